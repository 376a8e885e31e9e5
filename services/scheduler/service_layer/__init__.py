"""The service layer: one cluster's scheduling loop and how its events are written."""
