#!/bin/sh
# etcd's TLS for the bundled StatefulSet (infra/agent/etcd/etcd.yaml, docs/decisions/0037):
#   infra/agent/etcd-certs.sh <dir>     (make agent-certs STAGE=<stage>: <dir> = the stage's secrets/etcd)
# A CA of its own (ca.key stays in <dir>, never in the cluster: keep it to sign the next certificate),
# and ONE member certificate for serving clients and peers (server and client auth), valid for the
# members' names, the client Service and 127.0.0.1 (etcdctl in a member's pod). Files that exist
# are kept: run it again after deleting member.* to renew the member certificate.
set -eu
dir=${1:?usage: etcd-certs.sh <dir>}
ns=${VAMP_ETCD_NAMESPACE:-vamp-system}
days=${VAMP_ETCD_CERT_DAYS:-825}
umask 077
mkdir -p "$dir"
cd "$dir"
if [ ! -f ca.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
    -days 3650 -subj "/CN=vamp-etcd-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
if [ ! -f member.crt ]; then
  san="DNS:*.vamp-etcd-peer.$ns.svc,DNS:*.vamp-etcd-peer.$ns.svc.cluster.local"
  san="$san,DNS:vamp-etcd.$ns.svc,DNS:vamp-etcd.$ns.svc.cluster.local,DNS:vamp-etcd,DNS:localhost,IP:127.0.0.1"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout member.key -out member.csr \
    -subj "/CN=vamp-etcd" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
    "$san" > member.ext
  openssl x509 -req -in member.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out member.crt -days "$days" \
    -extfile member.ext 2>/dev/null
  rm -f member.csr member.ext ca.srl
fi
echo "$dir: ca.crt, member.crt, member.key (ca.key: keep it, never apply it)"
