#!/usr/bin/env bash
# A full kubeadm PKI made with the openssl CLI, the way Kubernetes' "manual certificates"
# documentation makes one: a key (genrsa / ecparam -genkey), a CSR (req -new), a signature
# (x509 -req with an extension file) per certificate, one after another.
#
#   bench/peers/openssl-init.sh OUT ecdsa|rsa
#
# The set is kubepki init's (docs/profiles.md): the CAs ca, front-proxy-ca and etcd-ca; the
# seven leaves with kubeadm's CN, O, SANs and extended key usages; the five kubeconfigs'
# client certificates; sa.key/sa.pub; kubeadm's file names. Kubeconfigs are written by the
# shell with the certificates embedded.
set -euo pipefail
out=$1
alg=${2:?ecdsa or rsa}
case $alg in ecdsa | rsa) ;; *) echo "usage: $0 OUT ecdsa|rsa" >&2; exit 2 ;; esac
mkdir -p "$out/pki/etcd"
cd "$out/pki"
node=cp1 ip=10.0.0.11 endpoint=api.example.internal

genkey() {
  if [ "$alg" = ecdsa ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$1"
  else
    openssl genrsa -traditional -out "$1" 2048 2>/dev/null
  fi
}

# ca NAME CN
ca() {
  genkey "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/CN=$2" \
    -addext "subjectAltName=DNS:$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" -out "$1.crt"
}

# leaf NAME CA EKU SUBJECT [SANS]
leaf() {
  genkey "$1.key"
  openssl req -new -key "$1.key" -subj "$4" -out "$1.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=$3" "authorityKeyIdentifier=keyid" "subjectKeyIdentifier=none" >"$1.ext"
  [ -n "${5:-}" ] && printf 'subjectAltName=%s\n' "$5" >>"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -sha256 -days 365 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}

ca ca kubernetes
ca front-proxy-ca front-proxy-ca
ca etcd/ca etcd-ca

leaf apiserver ca serverAuth /CN=kube-apiserver \
  "DNS:$node,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:$endpoint,IP:10.96.0.1,IP:$ip"
leaf apiserver-kubelet-client ca clientAuth "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client"
leaf front-proxy-client front-proxy-ca clientAuth /CN=front-proxy-client
leaf etcd/server etcd/ca serverAuth,clientAuth "/CN=$node" "DNS:$node,DNS:localhost,IP:$ip,IP:127.0.0.1,IP:::1"
leaf etcd/peer etcd/ca serverAuth,clientAuth "/CN=$node" "DNS:$node,DNS:localhost,IP:$ip,IP:127.0.0.1,IP:::1"
leaf etcd/healthcheck-client etcd/ca clientAuth /CN=kube-etcd-healthcheck-client
leaf apiserver-etcd-client etcd/ca clientAuth /CN=kube-apiserver-etcd-client

genkey sa.key
openssl pkey -in sa.key -pubout -out sa.pub

# kubeconfig FILE CN O SERVER
kubeconfig() {
  local subject="/CN=$2"
  [ -n "$3" ] && subject="/O=$3/CN=$2"
  leaf "$1" ca clientAuth "$subject"
  cat >"../$1.conf" <<YAML
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 <ca.crt)
    server: $4
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: $2
  name: $2@kubernetes
current-context: $2@kubernetes
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 <"$1.crt")
    client-key-data: $(base64 -w0 <"$1.key")
YAML
}
kubeconfig admin kubernetes-admin kubeadm:cluster-admins "https://$endpoint:6443"
kubeconfig super-admin kubernetes-super-admin system:masters "https://$endpoint:6443"
kubeconfig kubelet "system:node:$node" system:nodes "https://$endpoint:6443"
kubeconfig controller-manager system:kube-controller-manager "" "https://$ip:6443"
kubeconfig scheduler system:kube-scheduler "" "https://$ip:6443"
