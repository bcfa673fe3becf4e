#!/bin/sh
# etcd v3 authentication for the agents' etcd (docs/decisions/0037), run ONCE after its members
# are ready (`make agent-etcd-auth STAGE=<stage>`):
#   infra/agent/etcd-auth.sh <secrets dir>
# Users and roles: root (etcd needs it to enable auth), vamp-control-plane read-write on /vamp/
# (the publisher, docs/decisions/0036), vamp-agent read-only on /vamp/ (the agents watch).
# Passwords are files in <secrets dir> (etcd-root-password, etcd-control-plane-password,
# etcd-agent-password), made here when missing, and reach etcdctl on its stdin, never on a
# command line. ETCDCTL is how etcdctl is run: by default in the first member's pod; for an
# etcd of your own, e.g. ETCDCTL="etcdctl --endpoints=https://etcd:2379 --cacert=ca.crt".
set -eu
dir=${1:?usage: etcd-auth.sh <secrets dir>}
ETCDCTL=${ETCDCTL:-kubectl -n vamp-system exec -i vamp-etcd-0 -- etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/tls/ca.crt}
umask 077
for who in root control-plane agent; do
  [ -s "$dir/etcd-$who-password" ] || openssl rand -hex 24 > "$dir/etcd-$who-password"
done
password() { cat "$dir/etcd-$1-password"; }
ctl() { $ETCDCTL "$@"; }

password root | ctl user add root --interactive=false
ctl role add vamp-control-plane
ctl role grant-permission vamp-control-plane --prefix=true readwrite /vamp/
password control-plane | ctl user add vamp-control-plane --interactive=false
ctl user grant-role vamp-control-plane vamp-control-plane
ctl role add vamp-agent
ctl role grant-permission vamp-agent --prefix=true read /vamp/
password agent | ctl user add vamp-agent --interactive=false
ctl user grant-role vamp-agent vamp-agent
ctl auth enable
echo "etcd: auth enabled; users vamp-control-plane (read-write /vamp/) and vamp-agent (read /vamp/)"
