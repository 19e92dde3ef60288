error: /etc/kubernetes/pki/ca.crt: the cluster CA does not exist (run `kubepki init` first, or pass the cluster's --cert-dir)
