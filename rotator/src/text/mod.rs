//! Text every output shares: the one table layout (Go's text/tabwriter, as kubeadm's output
//! uses it).

pub(crate) mod tabwriter;
