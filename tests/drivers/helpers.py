from __future__ import annotations

from typing import Any

from chalicelib.drivers.base import HealthCheckSpec, PortSpec, ServiceSpec
from tests.agent.helpers import wait_for  # noqa: F401  (the drivers' tests poll with it too)

# A tiny HTTP service that answers its version (and 500 on /fail); used by the local driver tests.
SERVER = (
    "python3 -c \"import http.server,os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "  def do_GET(self):\n"
    "    b=os.environ.get('VERSION','?').encode(); self.send_response(200); self.end_headers(); self.wfile.write(b)\n"
    "  def log_message(self,*a): pass\n"
    "http.server.HTTPServer(('127.0.0.1',int(os.environ['PORT'])),H).serve_forever()\""
)


def image_spec(**overrides: Any) -> ServiceSpec:
    base = dict(
        deployment="sava", cluster="sava", service="sava:1.0.0", deployable_type="container/docker",
        definition="magneticio/sava:1.0.0", ports=(PortSpec("webport", 8080),), env={"A": "1"},
        cpu=0.2, memory=256.0, instances=2,
        health_checks=(HealthCheckSpec("webport", "/health", "HTTP", 10, 5, 10, 3),),
    )
    base.update(overrides)
    return ServiceSpec(**base)


def moto_ecs_cluster(endpoint: str) -> tuple[Any, str, str, str]:
    """An ECS cluster on moto with a VPC, a subnet and a security group for its awsvpc tasks:
    (ecs client, cluster, subnet, group). DNS hostnames are on: moto's RunTask fails on awsvpc
    without a private DNS name for the task's network interface."""
    import uuid

    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"g{uuid.uuid4().hex[:6]}", Description="t", VpcId=vpc)["GroupId"]
    client = boto3.client("ecs", region_name="us-east-1", endpoint_url=endpoint)
    cluster = f"vamp-{uuid.uuid4().hex[:6]}"
    client.create_cluster(clusterName=cluster)
    return client, cluster, subnet, group
