package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// The cluster's service network; the API server's own Service takes its first address.
const serviceCIDR = "10.96.0.0/16"

// prepare writes the certificates, kubeconfigs, audit policy and KWOK stages into dir
// and returns the components in start order.
// With node set, the cluster gets a real node instead of KWOK's.
func prepare(dir, kubernetes, etcd, kwok string, controlPlaneOnly bool, node *nodeConfig) (*state, error) {
	pki := filepath.Join(dir, "pki")
	ca, err := newAuthority(pki)
	if err != nil {
		return nil, err
	}
	identities := []identity{
		{file: "kube-apiserver", common: "kube-apiserver", server: true,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			ips: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}},
		{file: "kube-controller-manager-serving", common: "kube-controller-manager", server: true,
			dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}},
		{file: "kube-scheduler-serving", common: "kube-scheduler", server: true,
			dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}},
		// The aggregator dials localhost but checks the name of the APIService's Service.
		{file: "metrics-api-serving", common: "local-metrics-api", server: true,
			dns: []string{"localhost", "local-metrics-api.kube-system.svc"}, ips: []net.IP{net.ParseIP("127.0.0.1")}},
		// The API server's identity towards aggregated APIs (the metrics API).
		{file: "front-proxy-client", common: "front-proxy-client"},
		{file: "admin", common: "kubernetes-admin", orgs: []string{"system:masters"}},
		{file: "kube-controller-manager", common: "system:kube-controller-manager"},
		{file: "kube-scheduler", common: "system:kube-scheduler"},
		// KWOK writes the status of every node and pod, as the kubelets it stands in
		// for would together.
		{file: "kwok", common: "kwok", orgs: []string{"system:masters"}},
		{file: "provisioner", common: "webtoon-local-provisioner", orgs: []string{"system:masters"}},
	}
	host := "127.0.0.1"
	if node != nil {
		// Pods reach the API server through the `kubernetes` Service, which leads to
		// the address it advertises: the node's, on the pod bridge.
		host = nodeIP
		identities[0].ips = append(identities[0].ips, net.ParseIP(nodeIP))
		identities = append(identities,
			identity{file: "kubelet", common: "system:node:" + nodeName, orgs: []string{"system:nodes"}},
			identity{file: "kube-proxy", common: "system:kube-proxy"},
			// kube-router's firewall reads pods, namespaces and NetworkPolicies
			// cluster-wide, as the cluster's own network plugin.
			identity{file: "kube-router", common: "kube-router", orgs: []string{"system:masters"}},
			// The API server's identity towards the kubelet (logs, exec, port-forward).
			identity{file: "kube-apiserver-kubelet-client", common: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
		)
	}
	for _, id := range identities {
		if err := ca.issue(pki, id); err != nil {
			return nil, err
		}
	}
	if err := writeServiceAccountKeys(pki); err != nil {
		return nil, err
	}
	names := []string{"etcd-client", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "metrics-api"}
	picked, err := freePorts(len(names))
	if err != nil {
		return nil, err
	}
	ports := map[string]int{}
	for i, name := range names {
		ports[name] = picked[i]
	}
	server := fmt.Sprintf("https://%s:%d", host, ports["kube-apiserver"])
	users := []string{"admin", "kube-controller-manager", "kube-scheduler", "kwok", "provisioner"}
	if node != nil {
		users = append(users, "kubelet", "kube-proxy", "kube-router")
	}
	kubeconfigs := map[string]string{}
	for _, user := range users {
		path := filepath.Join(dir, user+".kubeconfig")
		if err := writeKubeconfig(path, server, pki, user); err != nil {
			return nil, err
		}
		kubeconfigs[user] = path
	}
	if err := os.WriteFile(filepath.Join(dir, "audit-policy.yaml"), auditPolicy, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "kwok-stages.yaml"), kwokStages, 0o600); err != nil {
		return nil, err
	}
	p := func(name string) string { return filepath.Join(pki, name) }
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports["etcd-client"])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports["etcd-peer"])
	components := []component{
		{
			Name: "etcd",
			Args: []string{etcd,
				"--name=local", "--data-dir=" + filepath.Join(dir, "etcd"),
				"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
				"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
				"--initial-cluster=local=" + peerURL,
				// A throwaway test cluster: losing its data on a power cut costs nothing,
				// and fsync on every write would dominate its latency.
				"--unsafe-no-fsync",
				"--log-level=warn",
			},
			Health: etcdURL + "/health",
		},
		{
			Name: "kube-apiserver",
			Args: []string{filepath.Join(kubernetes, "kube-apiserver"),
				"--bind-address=" + host, "--advertise-address=" + host,
				fmt.Sprintf("--secure-port=%d", ports["kube-apiserver"]),
				"--etcd-servers=" + etcdURL,
				"--cert-dir=" + filepath.Join(dir, "kube-apiserver"),
				"--tls-cert-file=" + p("kube-apiserver.crt"), "--tls-private-key-file=" + p("kube-apiserver.key"),
				"--client-ca-file=" + p("ca.crt"),
				"--authorization-mode=Node,RBAC",
				"--service-cluster-ip-range=" + serviceCIDR,
				"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
				"--service-account-key-file=" + p("service-account.pub"),
				"--service-account-signing-key-file=" + p("service-account.key"),
				"--audit-policy-file=" + filepath.Join(dir, "audit-policy.yaml"),
				"--audit-log-path=" + filepath.Join(dir, "audit.log"),
				"--audit-log-format=json",
				// One file for the cluster's life: a test that counts requests from a
				// mark must not lose them to a rotation (the default rotates at 100 MB).
				"--audit-log-maxsize=100000",
				"--allow-privileged=false",
				"--requestheader-client-ca-file=" + p("ca.crt"),
				"--requestheader-allowed-names=front-proxy-client",
				"--requestheader-username-headers=X-Remote-User",
				"--requestheader-group-headers=X-Remote-Group",
				"--requestheader-extra-headers-prefix=X-Remote-Extra-",
				"--proxy-client-cert-file=" + p("front-proxy-client.crt"),
				"--proxy-client-key-file=" + p("front-proxy-client.key"),
				"--profiling=false",
			},
			Health: server + "/readyz",
		},
	}
	if node != nil {
		components[1].Args = append(components[1].Args,
			"--kubelet-client-certificate="+p("kube-apiserver-kubelet-client.crt"),
			"--kubelet-client-key="+p("kube-apiserver-kubelet-client.key"),
			// The node's name resolves nowhere; its address is on the Node.
			"--kubelet-preferred-address-types=InternalIP")
	} else {
		// No pod reaches the API server through its Service on KWOK's nodes, and the
		// endpoint reconciler refuses a loopback address.
		components[1].Args = append(components[1].Args, "--endpoint-reconciler-type=none")
	}
	if controlPlaneOnly {
		return &state{Server: server, Kubeconfig: kubeconfigs["admin"], Components: components}, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	components = append(components,
		component{
			Name: "kube-controller-manager",
			Args: []string{filepath.Join(kubernetes, "kube-controller-manager"),
				"--kubeconfig=" + kubeconfigs["kube-controller-manager"],
				"--authentication-kubeconfig=" + kubeconfigs["kube-controller-manager"],
				"--authorization-kubeconfig=" + kubeconfigs["kube-controller-manager"],
				"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ports["kube-controller-manager"]),
				"--tls-cert-file=" + p("kube-controller-manager-serving.crt"),
				"--tls-private-key-file=" + p("kube-controller-manager-serving.key"),
				"--service-account-private-key-file=" + p("service-account.key"),
				"--root-ca-file=" + p("ca.crt"),
				"--cluster-signing-cert-file=" + p("ca.crt"),
				"--use-service-account-credentials=true",
				"--service-cluster-ip-range=" + serviceCIDR,
				"--controllers=*",
				"--leader-elect=false",
				"--profiling=false",
			},
			Health: fmt.Sprintf("https://127.0.0.1:%d/healthz", ports["kube-controller-manager"]),
		},
		component{
			Name: "kube-scheduler",
			Args: []string{filepath.Join(kubernetes, "kube-scheduler"),
				"--kubeconfig=" + kubeconfigs["kube-scheduler"],
				"--authentication-kubeconfig=" + kubeconfigs["kube-scheduler"],
				"--authorization-kubeconfig=" + kubeconfigs["kube-scheduler"],
				"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", ports["kube-scheduler"]),
				"--tls-cert-file=" + p("kube-scheduler-serving.crt"),
				"--tls-private-key-file=" + p("kube-scheduler-serving.key"),
				"--leader-elect=false",
				"--profiling=false",
			},
			Health: fmt.Sprintf("https://127.0.0.1:%d/healthz", ports["kube-scheduler"]),
		},
		component{
			Name: "metrics-api",
			Args: []string{self, "metrics-api",
				"--kubeconfig=" + kubeconfigs["provisioner"],
				fmt.Sprintf("--port=%d", ports["metrics-api"]),
				"--cert=" + p("metrics-api-serving.crt"), "--key=" + p("metrics-api-serving.key"),
			},
			Health: fmt.Sprintf("https://127.0.0.1:%d/healthz", ports["metrics-api"]),
		},
	)
	if node == nil {
		components = append(components, component{
			Name: "kwok",
			Args: []string{kwok,
				"--kubeconfig=" + kubeconfigs["kwok"],
				"--config=" + filepath.Join(dir, "kwok-stages.yaml"),
				"--manage-all-nodes=true",
				"--node-lease-duration-seconds=40",
				"--cidr=10.244.0.1/16",
			},
		})
	}
	components = append(components,
		component{
			Name: "provisioner",
			Args: []string{self, "provision",
				"--kubeconfig=" + kubeconfigs["provisioner"],
				"--volumes=" + filepath.Join(dir, "volumes"),
			},
		},
	)
	if node != nil {
		nodeProcesses, err := nodeComponents(dir, kubeconfigs, node)
		if err != nil {
			return nil, err
		}
		components = append(components, nodeProcesses...)
	}
	return &state{Server: server, Kubeconfig: kubeconfigs["admin"], Components: components,
		MetricsAPIPort: ports["metrics-api"], Node: node}, nil
}

// writeKubeconfig writes a kubeconfig for one of the cluster's client certificates.
func writeKubeconfig(path, server, pki, user string) error {
	text := strings.NewReplacer(
		"SERVER", server,
		"CA", filepath.Join(pki, "ca.crt"),
		"CERT", filepath.Join(pki, user+".crt"),
		"KEY", filepath.Join(pki, user+".key"),
		"USER", user,
	).Replace(`apiVersion: v1
kind: Config
clusters:
- name: webtoon-local
  cluster: {server: SERVER, certificate-authority: CA}
users:
- name: USER
  user: {client-certificate: CERT, client-key: KEY}
contexts:
- name: webtoon-local
  context: {cluster: webtoon-local, user: USER}
current-context: webtoon-local
`)
	return os.WriteFile(path, []byte(text), 0o600)
}
