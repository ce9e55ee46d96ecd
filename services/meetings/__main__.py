from shared.service import run_service

from .bootstrap import bootstrap

run_service(bootstrap)
