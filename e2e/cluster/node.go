package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The real node's name, its address on the pod bridge (which the API server also
// advertises, so that pods reach it through the `kubernetes` Service), the pod
// network behind that bridge, and the cluster DNS Service's address.
const (
	nodeName   = "webtoon-node"
	nodeIP     = "10.88.0.1"
	podCIDR    = "10.88.0.0/16"
	bridgeName = "webtoon0"
	clusterDNS = "10.96.0.10"
)

// The Debian packages the real node runs: containerd with its runc shim, runc, and the
// CNI reference plugins.
const (
	containerdBinary = "/usr/bin/containerd"
	ctrBinary        = "/usr/bin/ctr"
	runcBinary       = "/usr/sbin/runc"
	cniPluginDir     = "/usr/lib/cni"
)

// nodeConfig is what `up --node real` needs besides the control plane: kubelet and
// kube-proxy built from k8s.io/kubernetes, kube-router's firewall, and the image
// tarballs to import (REF=PATH lines from e2e/node/images.sh).
type nodeConfig struct {
	Kubelet    string   `json:"kubelet"`
	KubeProxy  string   `json:"kubeProxy"`
	KubeRouter string   `json:"kubeRouter"`
	Images     []string `json:"images"`
}

func containerdSocket(dir string) string { return filepath.Join(dir, "containerd", "containerd.sock") }

// nodeComponents writes the node's configuration into dir and returns its
// processes in start order.
func nodeComponents(dir string, kubeconfigs map[string]string, node *nodeConfig) ([]component, error) {
	pki := filepath.Join(dir, "pki")
	files := map[string]string{
		"containerd/config.toml":        containerdConfig(dir),
		"cni/net.d/10-webtoon.conflist": cniConfig,
		"kubelet/config.yaml":           kubeletConfig(dir, pki),
		"kube-proxy/config.yaml":        kubeProxyConfig(kubeconfigs["kube-proxy"]),
	}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	return []component{
		{
			Name: "containerd",
			Args: []string{containerdBinary, "--config=" + filepath.Join(dir, "containerd", "config.toml")},
		},
		{
			Name: "kubelet",
			Args: []string{node.Kubelet,
				"--config=" + filepath.Join(dir, "kubelet", "config.yaml"),
				"--kubeconfig=" + kubeconfigs["kubelet"],
				"--root-dir=" + filepath.Join(dir, "kubelet", "root"),
				"--cert-dir=" + filepath.Join(dir, "kubelet", "pki"),
				"--hostname-override=" + nodeName,
				"--node-ip=" + nodeIP,
				"--node-labels=topology.kubernetes.io/zone=zone-a,topology.kubernetes.io/region=local",
			},
			Health: "http://127.0.0.1:10248/healthz",
		},
		{
			Name:   "kube-proxy",
			Args:   []string{node.KubeProxy, "--config=" + filepath.Join(dir, "kube-proxy", "config.yaml")},
			Health: "http://127.0.0.1:10256/livez",
		},
		{
			Name: "kube-router",
			Args: []string{node.KubeRouter,
				"--kubeconfig=" + kubeconfigs["kube-router"],
				"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
				"--enable-cni=false", "--enable-ipv4=true", "--enable-ipv6=false",
				"--hostname-override=" + nodeName,
				"--service-cluster-ip-range=" + serviceCIDR,
				"--iptables-sync-period=1m",
				"--health-port=20244", "--metrics-port=0",
			},
			Health: "http://127.0.0.1:20244/healthz",
		},
	}, nil
}

// containerdConfig keeps every file of containerd in dir, and gives the CRI plugin
// runc, the CNI plugins and the pause image the node has imported.
func containerdConfig(dir string) string {
	d := func(name string) string { return filepath.Join(dir, name) }
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  enable_selinux = false
  # The kubelet asks for negative OOM scores (-998 for the sandbox), which need
  # CAP_SYS_RESOURCE: a machine whose root lacks it (a container, some VMs) refuses
  # them, and runc then fails every pod. Containers get containerd's own score at
  # the lowest instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, d("containerd/root"), d("containerd/state"), containerdSocket(dir), runcBinary, cniPluginDir, d("cni/net.d"))
}

// cniConfig puts every pod on one bridge with the node as its gateway. hairpinMode
// lets a pod reach itself through a Service; ipMasq hides pod addresses from
// anything outside the pod network.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "webtoon",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "` + bridgeName + `",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "` + podCIDR + `", "gateway": "` + nodeIP + `"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// kubeletConfig runs the kubelet on this machine's cgroup v1 hierarchy with
// cgroupfs, keeps its files in dir, and leaves the machine's images alone: the node
// has no registry to pull a collected image from again.
func kubeletConfig(dir, pki string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: ""
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
podLogsDir: %q
volumePluginDir: %q
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
serializeImagePulls: false
maxPods: 110
`, filepath.Join(pki, "ca.crt"), containerdSocket(dir), clusterDNS,
		filepath.Join(dir, "pod-logs"), filepath.Join(dir, "kubelet", "volume-plugins"))
}

// kubeProxyConfig programs Services with iptables and leaves the machine's
// conntrack limits as they are.
func kubeProxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: %q}
hostnameOverride: %s
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [%s/32]
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, kubeconfig, nodeName, podCIDR, nodeIP)
}

// importImages loads every image tarball into containerd's CRI namespace; a tarball
// that holds several refs is imported once.
func importImages(dir string, images []string) error {
	imported := map[string]bool{}
	for _, line := range images {
		ref, path, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("image %q: want REF=PATH", line)
		}
		if imported[path] {
			continue
		}
		imported[path] = true
		cmd := exec.Command(ctrBinary, "--address", containerdSocket(dir), "--namespace", "k8s.io",
			"images", "import", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("import %s from %s: %v: %s", ref, path, err, out)
		}
	}
	return nil
}

// readImages reads the REF=PATH lines e2e/node/images.sh printed.
func readImages(path string) ([]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var images []string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			images = append(images, line)
		}
	}
	return images, scanner.Err()
}

// waitForSocket waits until containerd listens on its socket.
func waitForSocket(dir string, c component, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := processOf(dir, c); err != nil {
			return exited(dir, c, err)
		}
		if conn, err := net.Dial("unix", path); err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen on %s within %s; see %s", c.Name, path, timeout, logFile(dir, c.Name))
}

// startCoreDNS runs CoreDNS as the cluster DNS: a Deployment in kube-system with the
// label NetworkPolicies select DNS by, behind the kube-dns Service at clusterDNS.
func startCoreDNS(client *kubernetes.Clientset) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	labels := map[string]string{"k8s-app": "kube-dns"}
	meta := metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system", Labels: labels}
	create := func(err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); create(err) != nil {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:coredns"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "coredns", Namespace: "kube-system"}},
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); create(err) != nil {
		return err
	}
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}}
	if _, err := client.CoreV1().ServiceAccounts("kube-system").Create(ctx, account, metav1.CreateOptions{}); create(err) != nil {
		return err
	}
	// Nothing outside the cluster resolves here: names outside cluster.local get an
	// answer at once instead of a forward that times out.
	config := &corev1.ConfigMap{ObjectMeta: meta, Data: map[string]string{"Corefile": `.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
`}}
	if _, err := client.CoreV1().ConfigMaps("kube-system").Create(ctx, config, metav1.CreateOptions{}); create(err) != nil {
		return err
	}
	port := func(name string, protocol corev1.Protocol) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: 53, Protocol: protocol}
	}
	deployment := &appsv1.Deployment{
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: "coredns",
					DNSPolicy:          corev1.DNSDefault,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "coredns",
						Image:           "registry.k8s.io/coredns/coredns:v1.14.0",
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"-conf", "/etc/coredns/Corefile"},
						Ports:           []corev1.ContainerPort{port("dns", corev1.ProtocolUDP), port("dns-tcp", corev1.ProtocolTCP)},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							// Port 53 without root.
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8181)}},
							PeriodSeconds: 2,
						},
						LivenessProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}},
							FailureThreshold: 5,
						},
					}},
					Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
						ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}},
					}}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments("kube-system").Create(ctx, deployment, metav1.CreateOptions{}); create(err) != nil {
		return err
	}
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system", Labels: labels},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterDNS,
			Selector:  labels,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("dns-tcp")},
			},
		},
	}
	if _, err := client.CoreV1().Services("kube-system").Create(ctx, service, metav1.CreateOptions{}); create(err) != nil {
		return err
	}
	return nil
}

// waitDeploymentAvailable waits until every replica of the Deployment is available.
func waitDeploymentAvailable(client *kubernetes.Clientset, namespace, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		d, err := client.AppsV1().Deployments(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil && d.Status.AvailableReplicas >= *d.Spec.Replicas &&
			d.Status.ObservedGeneration >= d.Generation {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return errors.New("deployment " + namespace + "/" + name + " did not become available within " + timeout.String())
}
