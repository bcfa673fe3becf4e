# vamp-serverless: everything a newcomer runs. Each target does its own set-up.
PYTHON ?= python3
STATE  ?= .vamp
REQS   := pyproject.toml requirements.txt requirements-dev.txt agent/requirements.txt vamp_cli/requirements.txt
STAMP  := $(STATE)/.setup-$(shell cat $(REQS) | cksum | cut -d' ' -f1)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup run demo test bench lint package deploy destroy clean
.PHONY: agent-image agent-push agent-config agent-certs agent-etcd-auth

setup: $(STAMP)

$(STAMP): $(REQS)
	@mkdir -p $(STATE)
	@if ! command -v etcd >/dev/null || ! command -v haproxy >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq etcd-server haproxy >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq etcd-server haproxy >/dev/null)); \
	  else echo "install etcd-server and haproxy (apt-get install etcd-server haproxy)"; exit 1; fi; \
	fi
	@# the package itself, editable, with the dev extra (the pins of the requirements files, 0046): `vamp` on PATH
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

run: setup                ## the local stack: API on 127.0.0.1:$${VAMP_PORT:-8080} until Ctrl-C
	$(PYTHON) -m local run

demo: setup               ## the main job on the local stack
	$(PYTHON) -m local demo

test: setup               ## the whole test suite against real local parts
	$(PYTHON) -m pytest -q -n 2 -p no:cacheprovider

bench: setup              ## speed and scale figures
	$(PYTHON) -m bench

lint: setup               ## imports (ruff: unused, undefined, order) and the CloudFormation
	ruff check chalicelib agent vamp_cli local bench tests app.py infra
	$(PYTHON) -m infra.template dev > $(STATE)/sam.json && cfn-lint $(STATE)/sam.json

# The CloudFormation package for AWS in out/, for the python3.12 Lambda runtime (3.11 is retired).
# Chalice targets the runtime of the Python that runs it, so it runs from a python3.12 venv; the
# bundle gets that Python's bytecode (Lambda's /var/task is read-only: without it, every cold
# start recompiles the sources) and Linux wheels matching the runtime.
LAMBDA_PYTHON ?= python3.12
STAGE ?= dev
package: setup
	@$(LAMBDA_PYTHON) -c "import sys; assert sys.version_info[:2] == (3, 12)" 2>/dev/null || { echo "package needs Python 3.12, the Lambda runtime: set LAMBDA_PYTHON=/path/to/python3.12"; exit 1; }
	@[ -x $(STATE)/package-venv/bin/chalice ] || { $(LAMBDA_PYTHON) -m venv $(STATE)/package-venv && \
	  $(STATE)/package-venv/bin/pip install -q chalice==1.34.0 boto3==1.43.11; }
	$(STATE)/package-venv/bin/python -m compileall -q app.py chalicelib
	AWS_DEFAULT_REGION=$(AWS_DEFAULT_REGION) $(STATE)/package-venv/bin/chalice package --merge-template infra/resources.yaml out/$(STAGE)/
	cfn-lint out/$(STAGE)/sam.yaml

# The stack vamp-$(STAGE) in the account and region of your AWS credentials (docs/decisions/0035).
# DRIVER=kubernetes|ecs CLUSTER=<EKS or ECS cluster> OPENSEARCH_DOMAIN=<domain> BUCKET=<s3 bucket>
# ETCD_ENDPOINT=https://<etcd>:2379 or eks-service://vamp-system/vamp-etcd:2379 (the bundled one) ETCD_SUBNETS=<subnet,...> ETCD_SECURITY_GROUPS=<sg,...> ETCD_SECRET=<secret> (0036)
# ECS (0038): ECS_SUBNETS=subnet-a,subnet-b ECS_SECURITY_GROUPS=sg-x ECS_PUBLIC_IP=ENABLED|DISABLED
deploy: package           ## make deploy STAGE=<name>: package, upload, deploy; prints the outputs
	$(PYTHON) -m infra.deploy deploy --stage $(STAGE) --out out/$(STAGE) --driver $(or $(DRIVER),kubernetes) \
	  --cluster "$(CLUSTER)" --opensearch-domain "$(OPENSEARCH_DOMAIN)" $(if $(BUCKET),--bucket $(BUCKET)) \
	  --etcd-endpoint "$(ETCD_ENDPOINT)" --etcd-subnets "$(ETCD_SUBNETS)" --etcd-security-groups "$(ETCD_SECURITY_GROUPS)" \
	  --etcd-secret "$(ETCD_SECRET)" \
	  --ecs-subnets "$(ECS_SUBNETS)" --ecs-security-groups "$(ECS_SECURITY_GROUPS)" --ecs-public-ip $(or $(ECS_PUBLIC_IP),ENABLED)

destroy: setup            ## make destroy STAGE=<name>: delete the stack (the tables are kept, and said)
	$(PYTHON) -m infra.deploy destroy --stage $(STAGE)

# --- the agents on EKS (docs/decisions/0037): infra/agent/README.md, in this order ---
# The image is tagged with the commit (what agent-config names by default); -dirty: files differ.
AGENT_TAG = $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo -dirty)
agent-image:              ## docker build of the gateway agent: vamp-serverless/agent:<commit>
	DOCKER_BUILDKIT=1 docker build -f infra/agent/Dockerfile -t vamp-serverless/agent:$(AGENT_TAG) .

# ECR=<account>.dkr.ecr.<region>.amazonaws.com: the repository vamp-agent made once (tags immutable,
# scanned on push), the image pushed, and the stage's overlay pointed at it.
agent-push: agent-image   ## make agent-push STAGE=<name> ECR=<registry>: push, then agent-config
	@[ -n "$(ECR)" ] || { echo "ECR=<account>.dkr.ecr.<region>.amazonaws.com is needed"; exit 1; }
	@case "$(AGENT_TAG)" in *-dirty) echo "commit first: the tag names the commit (tags are immutable)"; exit 1;; esac
	aws ecr describe-repositories --repository-names vamp-agent >/dev/null 2>&1 || \
	  aws ecr create-repository --repository-name vamp-agent --image-tag-mutability IMMUTABLE \
	    --image-scanning-configuration scanOnPush=true >/dev/null
	aws ecr get-login-password | docker login --username AWS --password-stdin $(ECR)
	docker tag vamp-serverless/agent:$(AGENT_TAG) $(ECR)/vamp-agent:$(AGENT_TAG)
	docker push $(ECR)/vamp-agent:$(AGENT_TAG)
	$(PYTHON) -m infra.deploy agent-config --stage $(STAGE) --image $(ECR)/vamp-agent:$(AGENT_TAG)

agent-config: setup       ## make agent-config STAGE=<name>: infra/agent/stages/<name>/ from the stack
	$(PYTHON) -m infra.deploy agent-config --stage $(STAGE) $(if $(NAMESPACE),--namespace $(NAMESPACE)) \
	  $(if $(ETCD_ENDPOINT),--etcd-endpoint $(ETCD_ENDPOINT)) $(if $(IMAGE),--image $(IMAGE))

agent-certs:              ## make agent-certs STAGE=<name>: the bundled etcd's CA and member certificate
	infra/agent/etcd-certs.sh infra/agent/stages/$(STAGE)/secrets/etcd

agent-etcd-auth:          ## make agent-etcd-auth STAGE=<name>: etcd's users and roles, once, after the apply
	infra/agent/etcd-auth.sh infra/agent/stages/$(STAGE)/secrets

clean:
	rm -rf $(STATE) .pytest_cache .hypothesis
