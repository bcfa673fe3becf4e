from tests.agent.conftest import backends, etcd, live_etcd, start_agent  # noqa: F401  (fixtures)
from tests.api.conftest import Api, api  # noqa: F401  (fixture)
from tests.gateways.conftest import gw_api, namespace, publishing  # noqa: F401  (fixtures)
