"""vamp-serverless: the Chalice app. Routes only: each one line into chalicelib."""
import gc
import json
import os

gc.disable()  # no collection passes while the cold start builds long-lived objects (re-enabled below)

from chalice import AuthResponse, IAMAuthorizer, Rate, Response

from chalicelib.api.auth import authorize_token, refusal
from chalicelib.api.chalice_app import ThreadSafeChalice
from chalicelib.api.http import dispatch
from chalicelib.api.routes import (
    about,
    artifacts,
    deployment_telemetry,
    deployments,
    event_stream,
    events,
    gateways,
    nodes,
    releases,
    tokens,
    workflows,
)

app = ThreadSafeChalice(app_name="vamp")
# Bodies of any type reach the handlers, which answer 415 in Vamp's error shape.
ANY = ["*/*"]


# API Gateway caches this verdict per token for AUTHORIZER_TTL seconds: it only opens the gate (a
# revoked token reaches the API function that long, where the middleware refuses it; a longer
# TTL saves authorizer invocations). Role and scope are the middleware's, from the store (0022).
AUTHORIZER_TTL = 5


@app.authorizer(ttl_seconds=AUTHORIZER_TTL)
def vamp_token(auth_request):
    principal = authorize_token(auth_request.token)
    if principal is None:
        raise Exception("Unauthorized")  # API Gateway turns exactly this into a 401
    return AuthResponse(routes=["*"], principal_id=principal)


# On AWS the API Gateway authorizer runs first (VAMP_API_AUTHORIZER=token|iam in the stage's
# config); everywhere, the middleware below enforces the same rule, and what each token's role
# and namespaces allow (chalicelib/api/authorization.py: one permission per route).
AUTHORIZER = {"token": vamp_token, "iam": IAMAuthorizer()}.get(os.environ.get("VAMP_API_AUTHORIZER", ""))


@app.middleware("http")
def require_credentials(event, get_response):
    # 401 without valid credentials, 403 beyond the caller's role or namespaces, 503 while the
    # token store is busy
    refused = refusal(event)
    if refused is not None:
        status, body, headers = refused
        return Response(json.dumps(body), status_code=status, headers={**headers, "Content-Type": "application/json"})
    return get_response(event)


def route(path, methods):
    """Register under /api/v1 (default namespace) and /{namespace}/api/v1."""
    def register(view):
        for prefix in ("/api/v1", "/{namespace}/api/v1"):
            app.route(prefix + path, methods=methods, content_types=ANY, authorizer=AUTHORIZER)(view)
        return view
    return register


def respond(namespace, handler, *args):
    status, body, headers = dispatch(app.current_request, namespace, lambda call: handler(call, *args))
    return Response(body=body if body is not None else "", status_code=status, headers=headers)


@route("/info", ["GET"])
def info(namespace=None):
    return respond(namespace, about.info)


@route("/config", ["GET"])
def config(namespace=None):
    return respond(namespace, about.config)


@route("/openapi.json", ["GET"])
def openapi(namespace=None):
    return respond(namespace, about.openapi)


@route("", ["POST"])
def root_create(namespace=None):
    return respond(namespace, artifacts.root_change, "create")


@route("", ["PUT"])
def root_update(namespace=None):
    return respond(namespace, artifacts.root_change, "upsert")


@route("", ["DELETE"])
def root_delete(namespace=None):
    return respond(namespace, artifacts.root_change, "delete")


@route("/events", ["GET"])
def events_query(namespace=None):
    return respond(namespace, events.query_events_body)


@route("/events", ["POST"])
def events_publish(namespace=None):
    return respond(namespace, events.publish_events)


@route("/events/get", ["POST"])
def events_query_by_body(namespace=None):
    return respond(namespace, events.query_events_body)


@route("/tokens", ["GET"])
def tokens_list(namespace=None):
    return respond(namespace, tokens.list_tokens)


@route("/tokens", ["POST"])
def tokens_create(namespace=None):
    return respond(namespace, tokens.create_token)


@route("/tokens/{name}", ["DELETE"])
def tokens_revoke(name, namespace=None):
    return respond(namespace, tokens.revoke_token, name)


@route("/health/gateways/{gateway}", ["GET"])
def gateway_health(gateway, namespace=None):
    return respond(namespace, gateways.gateway_health, gateway)


@route("/health/gateways/{gateway}/routes/{route}", ["GET"])
def route_health(gateway, route, namespace=None):
    return respond(namespace, gateways.gateway_health, gateway, route)


@route("/metrics/gateways/{gateway}/{metric}", ["GET"])
def gateway_metric(gateway, metric, namespace=None):
    return respond(namespace, gateways.gateway_metric, gateway, metric)


@route("/metrics/gateways/{gateway}/routes/{route}/{metric}", ["GET"])
def route_metric(gateway, route, metric, namespace=None):
    return respond(namespace, gateways.gateway_metric, gateway, metric, route)


# --- the read side (docs/decisions/0042): deployments' health and metrics, the event stream
@route("/health/deployments/{deployment}", ["GET"])
def deployment_health(deployment, namespace=None):
    return respond(namespace, deployment_telemetry.deployment_health, deployment)


@route("/health/deployments/{deployment}/clusters/{cluster}", ["GET"])
def cluster_health(deployment, cluster, namespace=None):
    return respond(namespace, deployment_telemetry.deployment_health, deployment, cluster)


@route("/health/deployments/{deployment}/clusters/{cluster}/services/{service}", ["GET"])
def service_health(deployment, cluster, service, namespace=None):
    return respond(namespace, deployment_telemetry.deployment_health, deployment, cluster, service)


@route("/metrics/deployments/{deployment}/clusters/{cluster}/ports/{port}/{metric}", ["GET"])
def cluster_metric(deployment, cluster, port, metric, namespace=None):
    return respond(namespace, deployment_telemetry.deployment_metric, deployment, cluster, port, metric)


@route("/metrics/deployments/{deployment}/clusters/{cluster}/services/{service}/ports/{port}/{metric}", ["GET"])
def service_metric(deployment, cluster, service, port, metric, namespace=None):
    return respond(namespace, deployment_telemetry.deployment_metric, deployment, cluster, port, metric, service)


@route("/events/stream", ["GET"])
def events_stream(namespace=None):
    return respond(namespace, event_stream.stream)


@route("/vga/haproxy/{version}/configuration", ["GET"])
def gateway_configuration(version, namespace=None):
    return respond(namespace, gateways.gateway_configuration, version)


@route("/vga/nodes", ["GET"])
def gateway_nodes(namespace=None):
    return respond(namespace, nodes.list_nodes)


@route("/vga/nodes/{node}", ["PUT"])
def gateway_node_report(node, namespace=None):
    return respond(namespace, nodes.report_node, node)


@route("/releases", ["POST"])
def releases_start(namespace=None):
    return respond(namespace, releases.start)


@route("/releases", ["GET"])
def releases_list(namespace=None):
    return respond(namespace, releases.list_releases)


@route("/releases/{name}", ["GET"])
def release_status(name, namespace=None):
    return respond(namespace, releases.status, name)


@route("/releases/{name}", ["DELETE"])
def release_delete(name, namespace=None):
    return respond(namespace, releases.delete, name)


@route("/releases/{name}/{action}", ["POST"])
def release_act(name, action, namespace=None):
    return respond(namespace, releases.act, name, action)


# Tasks of the release state machine (infra/release.asl.json): one line each into chalicelib.
@app.lambda_function(name="release_analyse")
def release_analyse(event, context):
    return _release_task("analyse", event)


@app.lambda_function(name="release_set_weight")
def release_set_weight(event, context):
    return _release_task("set_weight", event)


@app.lambda_function(name="release_gate")
def release_gate(event, context):
    return _release_task("gate", event)


@app.lambda_function(name="release_promote")
def release_promote(event, context):
    return _release_task("promote", event)


@app.lambda_function(name="release_rollback")
def release_rollback(event, context):
    return _release_task("rollback", event)


def _release_task(name, event):
    from chalicelib.releases import tasks  # pydantic models: loaded by the task functions, not the API's

    return tasks.TASKS[name](event)


@route("/deployments", ["GET"])
def deployments_list(namespace=None):
    return respond(namespace, deployments.list_deployments)


@route("/deployments", ["POST"])
def deployments_create(namespace=None):
    return respond(namespace, deployments.create_deployment)


@route("/deployments/{name}", ["GET"])
def deployment_get(name, namespace=None):
    return respond(namespace, deployments.get_deployment, name)


@route("/deployments/{name}", ["PUT"])
def deployment_put(name, namespace=None):
    return respond(namespace, deployments.update_deployment, name)


@route("/deployments/{name}", ["DELETE"])
def deployment_delete(name, namespace=None):
    return respond(namespace, deployments.delete_deployment, name)


@route("/deployments/{name}/clusters/{cluster}/services/{service}/scale", ["GET", "PUT"])
def deployment_scale(name, cluster, service, namespace=None):
    return respond(namespace, deployments.deployment_scale, name, cluster, service)


@route("/deployments/{name}/clusters/{cluster}/sla", ["GET", "POST", "PUT", "DELETE"])
def deployment_sla(name, cluster, namespace=None):
    return respond(namespace, deployments.deployment_sla, name, cluster, app.current_request.method)


# The publisher function (docs/decisions/0036): inside the cluster's VPC, the one function that
# reaches etcd; the others invoke it (VAMP_GATEWAY_PUBLISHER_FUNCTION). No store, no signing key.
@app.lambda_function(name="gateway_publish")
def gateway_publish(event, context):
    from chalicelib.kv import aws_lambda  # etcd3gw: loaded by this function only

    return aws_lambda.serve(event)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def scheduled_pass(event):
    from chalicelib import jobs  # the domain's models (pydantic): not on every request's cold start

    return jobs.every_minute(event, workflows.writers())  # the SLA pass's events trigger workflows (0044)


# --- workflows (docs/decisions/0039): status as Vamp's, the runs the schedules fire
@route("/workflows/{name}/status", ["GET"])
def workflow_status(name, namespace=None):
    return respond(namespace, workflows.get_status, name)


@route("/workflows/{name}/status", ["PUT"])
def workflow_status_put(name, namespace=None):
    return respond(namespace, workflows.put_status, name)


@app.lambda_function(name="workflow_run")
def workflow_run(event, context):
    from chalicelib.workflows import runs  # the built-ins' models: loaded by this function only

    return runs.handle(event, workflows.writers())


@app.on_cw_event({"source": ["vamp.user"]}, name="workflow_bus_event")
def workflow_bus_event(event):
    from chalicelib.workflows import runs  # as above

    return runs.handle_bus_event(event.to_dict(), workflows.writers())


@route("/{kind}", ["GET"])
def artifacts_list(kind, namespace=None):
    return respond(namespace, artifacts.list_artifacts, kind)


@route("/{kind}", ["POST"])
def artifacts_create(kind, namespace=None):
    return respond(namespace, artifacts.create_artifacts, kind)


@route("/{kind}/{name}", ["GET"])
def artifact_get(kind, name, namespace=None):
    return respond(namespace, artifacts.get_artifact, kind, name)


@route("/{kind}/{name}", ["PUT"])
def artifact_put(kind, name, namespace=None):
    return respond(namespace, artifacts.update_artifact, kind, name)


@route("/{kind}/{name}", ["DELETE"])
def artifact_delete(kind, name, namespace=None):
    return respond(namespace, artifacts.delete_artifact, kind, name)


# --- automations (docs/decisions/0041): EventBridge rules chalice makes for these handlers ---
@app.on_cw_event({"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
                  "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]}}, name="ecr_image_pushed")
def ecr_image_pushed(event):
    from chalicelib.automations import ecr  # the domain's models: loaded by this function only

    return ecr.on_push(event.to_dict(), writers=workflows.writers())  # its events trigger workflows (0044)


# ALARM aborts releases and escalates SLAs; OK after ALARM de-escalates them (0041, 0044)
@app.on_cw_event({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                  "detail": {"state": {"value": ["ALARM", "OK"]}}}, name="alarm_raised")
def alarm_raised(event):
    from chalicelib.automations import cloudwatch_alarms

    return cloudwatch_alarms.on_alarm(event.to_dict(), writers=workflows.writers())


# What the cold start built lives as long as the process: keep it out of every later collection.
gc.freeze()
gc.enable()
