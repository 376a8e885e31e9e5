"""``/v1/clusters``: the clusters groups can be placed on."""

from __future__ import annotations

from bay.v1 import registry_pb2
from fastapi import APIRouter

from services.gateway.adapters import cluster_from_pb, cluster_to_pb
from services.gateway.body import validate_body
from services.gateway.deps import Document, Operator, Options, Registry, Viewer
from services.gateway.models import Cluster, ClusterList, ClusterRequest
from services.gateway.openapi import body_of

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])


@router.get("")
async def list_clusters(_: Viewer, registry: Registry) -> ClusterList:
    reply: registry_pb2.ListClustersReply = await registry.call(
        registry.stub.ListClusters, registry_pb2.ListClustersRequest()
    )
    return ClusterList(clusters=[cluster_from_pb(c) for c in reply.clusters])


@router.post("", status_code=201, openapi_extra=body_of(ClusterRequest))
async def register_cluster(_: Operator, doc: Document, opts: Options, registry: Registry) -> Cluster:
    body = validate_body(ClusterRequest, doc)
    request = registry_pb2.RegisterClusterRequest(cluster=cluster_to_pb(body), options=opts)
    return cluster_from_pb(
        await registry.call(registry.stub.RegisterCluster, request, body_prefix="cluster.")
    )
