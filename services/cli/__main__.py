import sys

from services.cli.main import app

sys.exit(app())
