"""The template `make package` writes, made in memory: chalice's own generator over app.py for a
stage, merged with infra/resources.yaml by chalice's own merger, without building the deployment
zip (its CodeUri is a placeholder) - so `make lint` and the tests read what CloudFormation would
be given without pip or Python 3.12. `python -m infra.template [STAGE]` prints it as JSON."""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_RUNTIME = "python3.12"  # the Makefile's LAMBDA_PYTHON


class CfnLoader(yaml.SafeLoader):
    """CloudFormation's short tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)


@lru_cache(maxsize=None)
def _packaged(stage: str) -> dict:
    import botocore.session
    from chalice.awsclient import TypedAWSClient
    from chalice.cli.factory import CLIFactory
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
    from chalice.deploy.deployer import BuildStage, InjectDefaults, PolicyGenerator, SwaggerBuilder
    from chalice.deploy.swagger import CFNSwaggerGenerator
    from chalice.package import PackageOptions, SAMTemplateGenerator, TemplateDeepMerger, YAMLTemplateSerializer
    from chalice.policy import AppPolicyGenerator
    from chalice.utils import OSUtils

    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=stage)
    application = ApplicationGraphBuilder().build(config, stage)
    resources = DependencyBuilder().build_dependencies(application)
    for resource in resources:
        if isinstance(resource, models.DeploymentPackage):
            resource.filename = "deployment.zip"
    # chalice's build stage without its one step that needs pip (the deployment package)
    osutils = OSUtils()
    BuildStage(steps=[InjectDefaults(), PolicyGenerator(policy_gen=AppPolicyGenerator(osutils=osutils), osutils=osutils),
                      SwaggerBuilder(swagger_generator=CFNSwaggerGenerator())]).execute(config, resources)
    resources = DependencyBuilder().build_dependencies(application)
    session = botocore.session.get_session()
    session.set_config_variable("region", "us-east-1")
    template = SAMTemplateGenerator(config, PackageOptions(TypedAWSClient(session))).generate(resources)
    for resource in template["Resources"].values():  # chalice writes the runtime of the Python running it:
        if resource["Type"] == "AWS::Serverless::Function":  # `make package` runs it on the Lambda's
            resource["Properties"]["Runtime"] = LAMBDA_RUNTIME
    serializer = YAMLTemplateSerializer()
    path = ROOT / "infra" / "resources.yaml"
    merged = TemplateDeepMerger().merge(serializer.load_template(path.read_text(), str(path)), template)
    return merged


def packaged(stage: str = "dev") -> dict:
    """The packaged template of `stage` (a copy: tests may change it)."""
    return copy.deepcopy(_packaged(stage))


NO_VALUE = {"Ref": "AWS::NoValue"}


def functions(template: dict) -> dict[str, dict]:
    """The template's functions, each with the environment it gets: the Globals' variables merged
    with its own as the SAM transform merges them (the function's win), and a variable set to
    AWS::NoValue left out as CloudFormation leaves it out."""
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    out = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        own = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        variables = {k: v for k, v in {**shared, **own}.items() if v != NO_VALUE}
        properties = {**resource.get("Properties", {}), "Environment": {"Variables": variables}}
        out[name] = {**resource, "Properties": properties}
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(packaged(sys.argv[1] if len(sys.argv) > 1 else "dev"), indent=1))
