#!/usr/bin/env bash
# A full kubeadm PKI made with the cfssl CLI, the way Kubernetes the Hard Way makes one: a JSON
# CSR per certificate, `cfssl gencert -initca` for the CAs, `cfssl gencert -profile` for the
# leaves, `cfssljson -bare` to write the files, one certificate after another.
#
#   bench/peers/cfssl-init.sh OUT ecdsa|rsa
#
# The set is kubepki init's (docs/profiles.md): the CAs ca, front-proxy-ca and etcd-ca; the
# seven leaves with kubeadm's CN, O, SANs and extended key usages; the five kubeconfigs'
# client certificates; sa.key/sa.pub. Files keep cfssl's names (NAME.pem, NAME-key.pem), as the
# Hard Way keeps them. Kubeconfigs are written by the shell with the certificates embedded (the
# Hard Way runs `kubectl config` four times per file, which is slower: this is the fast way).
set -euo pipefail
out=$1
case ${2:?ecdsa or rsa} in
  ecdsa) key='{"algo":"ecdsa","size":256}' ;;
  rsa) key='{"algo":"rsa","size":2048}' ;;
  *) echo "usage: $0 OUT ecdsa|rsa" >&2; exit 2 ;;
esac
mkdir -p "$out/pki/etcd"
cd "$out/pki"
node=cp1 ip=10.0.0.11 endpoint=api.example.internal

cat > ca-config.json <<JSON
{"signing": {"default": {"expiry": "8760h"}, "profiles": {
  "server": {"usages": ["signing", "key encipherment", "server auth"], "expiry": "8760h"},
  "client": {"usages": ["signing", "key encipherment", "client auth"], "expiry": "8760h"},
  "peer": {"usages": ["signing", "key encipherment", "server auth", "client auth"], "expiry": "8760h"}}}}
JSON

# ca NAME CN
ca() {
  printf '{"CN": "%s", "key": %s, "hosts": ["%s"], "ca": {"expiry": "87600h"}}\n' "$2" "$key" "$2" >"$1-csr.json"
  cfssl gencert -initca "$1-csr.json" 2>/dev/null | cfssljson -bare "$1"
}

# leaf NAME CA PROFILE CN O HOSTS-JSON
leaf() {
  local names='[]'
  [ -n "$5" ] && names="[{\"O\": \"$5\"}]"
  printf '{"CN": "%s", "key": %s, "names": %s, "hosts": %s}\n' "$4" "$key" "$names" "$6" >"$1-csr.json"
  cfssl gencert -ca="$2.pem" -ca-key="$2-key.pem" -config=ca-config.json -profile="$3" "$1-csr.json" 2>/dev/null |
    cfssljson -bare "$1"
}

ca ca kubernetes
ca front-proxy-ca front-proxy-ca
ca etcd/ca etcd-ca

leaf apiserver ca server kube-apiserver "" \
  "[\"$node\", \"kubernetes\", \"kubernetes.default\", \"kubernetes.default.svc\", \"kubernetes.default.svc.cluster.local\", \"$endpoint\", \"10.96.0.1\", \"$ip\"]"
leaf apiserver-kubelet-client ca client kube-apiserver-kubelet-client kubeadm:cluster-admins '[]'
leaf front-proxy-client front-proxy-ca client front-proxy-client "" '[]'
leaf etcd/server etcd/ca peer "$node" "" "[\"$node\", \"localhost\", \"$ip\", \"127.0.0.1\", \"::1\"]"
leaf etcd/peer etcd/ca peer "$node" "" "[\"$node\", \"localhost\", \"$ip\", \"127.0.0.1\", \"::1\"]"
leaf etcd/healthcheck-client etcd/ca client kube-etcd-healthcheck-client "" '[]'
leaf apiserver-etcd-client etcd/ca client kube-apiserver-etcd-client "" '[]'

# The service-account key pair: a key (cfssl genkey makes a key and a CSR), its public half.
printf '{"CN": "service-accounts", "key": %s}\n' "$key" >sa-csr.json
cfssl genkey sa-csr.json 2>/dev/null | cfssljson -bare sa
openssl pkey -in sa-key.pem -pubout -out sa.pub

# kubeconfig FILE CN O SERVER
kubeconfig() {
  leaf "$1" ca client "$2" "$3" '[]'
  local user=$2
  cat >"../$1.conf" <<YAML
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 <ca.pem)
    server: $4
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: $user
  name: $user@kubernetes
current-context: $user@kubernetes
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$1.pem")
    client-key-data: $(base64 -w0 <"$1-key.pem")
YAML
}
kubeconfig admin kubernetes-admin kubeadm:cluster-admins "https://$endpoint:6443"
kubeconfig super-admin kubernetes-super-admin system:masters "https://$endpoint:6443"
kubeconfig kubelet "system:node:$node" system:nodes "https://$endpoint:6443"
kubeconfig controller-manager system:kube-controller-manager "" "https://$ip:6443"
kubeconfig scheduler system:kube-scheduler "" "https://$ip:6443"
