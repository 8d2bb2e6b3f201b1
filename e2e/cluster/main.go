// Command webtoon-cluster runs a local Kubernetes cluster for the end-to-end suite:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from their Go
// modules, KWOK playing the nodes and their pods, and a small provisioner behind the
// default StorageClass. Everything binds to 127.0.0.1 and lives in one directory.
//
//	webtoon-cluster up --dir .cluster --kubernetes DIR --etcd PATH --kwok PATH [--nodes 3]
//	webtoon-cluster up --dir .cluster-oldest --kubernetes DIR --etcd PATH --control-plane-only
//	webtoon-cluster status --dir .cluster
//	webtoon-cluster restart --dir .cluster kube-apiserver
//	webtoon-cluster attach --dir .cluster [--env K=V] NAME -- COMMAND [ARGS...]
//	webtoon-cluster down --dir .cluster
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

//go:embed audit-policy.yaml
var auditPolicy []byte

//go:embed stages.yaml
var kwokStages []byte

const usage = `usage: webtoon-cluster COMMAND [flags]
  up        start a cluster in --dir and print its kubeconfig
  down      stop every process of the cluster in --dir and delete the directory
  status    show each process and whether the API server is ready
  restart   stop and start one component (for example kube-apiserver)
  attach    start a process of your own beside the cluster, stopped with it by down
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(os.Args[2:])
	case "down":
		err = down(os.Args[2:])
	case "status":
		err = status(os.Args[2:])
	case "restart":
		err = restart(os.Args[2:])
	case "attach":
		err = attach(os.Args[2:])
	case "provision":
		err = provision(os.Args[2:])
	case "metrics-api":
		err = metricsAPI(os.Args[2:])
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "webtoon-cluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// state is what `up` leaves in <dir>/state.json for the other commands.
type state struct {
	Server     string      `json:"server"`
	Kubeconfig string      `json:"kubeconfig"`
	Components []component `json:"components"`
	// MetricsAPIPort is where the stand-in metrics API listens; 0 without controllers.
	MetricsAPIPort int `json:"metricsAPIPort,omitempty"`
	// Node is the real node's configuration; nil when KWOK plays the nodes.
	Node *nodeConfig `json:"node,omitempty"`
}

func loadState(dir string) (*state, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no cluster in %s: start one with `up`", dir)
	}
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s/state.json: %w", dir, err)
	}
	return &s, nil
}

func (s *state) save(dir string) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "state.json"), raw, 0o600)
}

// parseInDir adds --dir to the command's flags, parses args, and returns the
// cluster's directory as an absolute path.
func parseInDir(fs *flag.FlagSet, args []string) (string, error) {
	dir := fs.String("dir", ".cluster", "directory that holds the cluster's data, logs and kubeconfig")
	_ = fs.Parse(args)
	return filepath.Abs(*dir)
}

// parseCluster is parseInDir for a cluster that `up` started, with its state.
func parseCluster(fs *flag.FlagSet, args []string) (string, *state, error) {
	dir, err := parseInDir(fs, args)
	if err != nil {
		return "", nil, err
	}
	s, err := loadState(dir)
	return dir, s, err
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	kubernetes := fs.String("kubernetes", "", "directory with kube-apiserver, kube-controller-manager, kube-scheduler")
	etcd := fs.String("etcd", "", "path of the etcd binary")
	kwok := fs.String("kwok", "", "path of the kwok binary")
	nodes := fs.Int("nodes", 3, "number of KWOK nodes, spread over as many zones")
	controlPlaneOnly := fs.Bool("control-plane-only", false, "start etcd and kube-apiserver only: no controllers, scheduler or nodes")
	nodeKind := fs.String("node", "kwok", "kwok: KWOK plays --nodes nodes; real: one node of this machine runs the pods")
	nodeBinaries := fs.String("node-binaries", "", "with --node real: directory with kubelet and kube-proxy")
	kubeRouter := fs.String("kube-router", "", "with --node real: path of the kube-router binary")
	images := fs.String("images", "", "with --node real: file of REF=TARBALL lines to import into containerd")
	dir, err := parseInDir(fs, args)
	if err != nil {
		return err
	}
	var node *nodeConfig
	switch *nodeKind {
	case "kwok":
		if *kubernetes == "" || *etcd == "" || (*kwok == "" && !*controlPlaneOnly) {
			return errors.New("--kubernetes, --etcd and --kwok are required: e2e/local-cluster.sh passes the binaries e2e/tools/build.sh built")
		}
	case "real":
		if *kubernetes == "" || *etcd == "" || *nodeBinaries == "" || *kubeRouter == "" || *images == "" {
			return errors.New("--node real needs --kubernetes, --etcd, --node-binaries, --kube-router and --images: e2e/local-cluster.sh passes them")
		}
		list, err := readImages(*images)
		if err != nil {
			return fmt.Errorf("--images: %w", err)
		}
		node = &nodeConfig{
			Kubelet:    filepath.Join(*nodeBinaries, "kubelet"),
			KubeProxy:  filepath.Join(*nodeBinaries, "kube-proxy"),
			KubeRouter: *kubeRouter,
			Images:     list,
		}
		*nodes = 1
	default:
		return fmt.Errorf("--node %s: want kwok or real", *nodeKind)
	}
	if s, err := loadState(dir); err == nil {
		for _, c := range s.Components {
			if _, ok := running(dir, c); ok {
				return fmt.Errorf("a cluster already runs in %s (%s is up): stop it with `down` first", dir, c.Name)
			}
		}
	}
	// A real node that was not taken down still holds mounts under dir.
	if err := restoreMachine(dir); err != nil {
		return fmt.Errorf("undo the previous node in %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, sub := range []string{"pki", "run", "logs", "etcd", "volumes"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	plan, err := prepare(dir, *kubernetes, *etcd, *kwok, *controlPlaneOnly, node)
	if err != nil {
		return err
	}
	if err := plan.save(dir); err != nil {
		return err
	}
	started := time.Now()
	if node != nil {
		if err := prepareMachine(dir); err != nil {
			return failUp(dir, plan, err)
		}
	}
	for _, c := range plan.Components {
		switch c.Name {
		case "kwok":
			// KWOK plays nodes that exist: create them (and the StorageClass) first.
			if err := seed(dir, plan, *nodes); err != nil {
				return failUp(dir, plan, err)
			}
		case "containerd":
			if err := seed(dir, plan, 0); err != nil {
				return failUp(dir, plan, err)
			}
		}
		if err := start(dir, c); err != nil {
			return failUp(dir, plan, err)
		}
		if c.Name == "containerd" {
			if err := waitForSocket(dir, c, containerdSocket(dir), 30*time.Second); err != nil {
				return failUp(dir, plan, err)
			}
			if err := importImages(dir, node.Images); err != nil {
				return failUp(dir, plan, err)
			}
			continue
		}
		if err := waitHealthy(dir, c, 90*time.Second); err != nil {
			return failUp(dir, plan, err)
		}
	}
	if !*controlPlaneOnly {
		if err := waitNodesReady(plan.Kubeconfig, *nodes, 90*time.Second); err != nil {
			return failUp(dir, plan, err)
		}
	}
	if node != nil {
		client, err := clientFor(plan.Kubeconfig)
		if err != nil {
			return failUp(dir, plan, err)
		}
		if err := startCoreDNS(client); err != nil {
			return failUp(dir, plan, fmt.Errorf("start CoreDNS: %w", err))
		}
		if err := waitDeploymentAvailable(client, "kube-system", "coredns", 120*time.Second); err != nil {
			return failUp(dir, plan, err)
		}
	}
	fmt.Fprintf(os.Stderr, "cluster up in %.1f s: %s\n", time.Since(started).Seconds(), plan.Server)
	fmt.Println(plan.Kubeconfig)
	return nil
}

// failUp stops what started, keeps the directory for its logs, and returns err.
func failUp(dir string, s *state, err error) error {
	stopAll(dir, s)
	if restoreErr := restoreMachine(dir); restoreErr != nil {
		err = errors.Join(err, restoreErr)
	}
	return fmt.Errorf("%w\n(logs kept in %s)", err, filepath.Join(dir, "logs"))
}

func stopAll(dir string, s *state) {
	for i := len(s.Components) - 1; i >= 0; i-- {
		stop(dir, s.Components[i], 15*time.Second)
	}
}

func down(args []string) error {
	dir, s, err := parseCluster(flag.NewFlagSet("down", flag.ExitOnError), args)
	if err != nil {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil
		}
		return err
	}
	stopAll(dir, s)
	if err := restoreMachine(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

func status(args []string) error {
	dir, s, err := parseCluster(flag.NewFlagSet("status", flag.ExitOnError), args)
	if err != nil {
		return err
	}
	down := 0
	for _, c := range s.Components {
		if pid, ok := running(dir, c); ok {
			fmt.Printf("%-24s running (pid %d)\n", c.Name, pid)
		} else {
			fmt.Printf("%-24s stopped (log: %s)\n", c.Name, logFile(dir, c.Name))
			down++
		}
	}
	fmt.Printf("server      %s\nkubeconfig  %s\n", s.Server, s.Kubeconfig)
	if down > 0 {
		return fmt.Errorf("%d of %d components are not running", down, len(s.Components))
	}
	return nil
}

func restart(args []string) error {
	fs := flag.NewFlagSet("restart", flag.ExitOnError)
	dir, s, err := parseCluster(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("name one component, such as kube-apiserver")
	}
	for _, c := range s.Components {
		if c.Name == fs.Arg(0) {
			stop(dir, c, 15*time.Second)
			if err := start(dir, c); err != nil {
				return err
			}
			return waitHealthy(dir, c, 90*time.Second)
		}
	}
	return fmt.Errorf("no component %q in %s", fs.Arg(0), dir)
}

// attach starts a process that belongs with the cluster (the operator, in the
// quickstart), so that status shows it and down stops it.
func attach(args []string) error {
	fs := flag.NewFlagSet("attach", flag.ExitOnError)
	var env []string
	fs.Func("env", "KEY=VALUE added to the process's environment (repeatable)", func(v string) error {
		env = append(env, v)
		return nil
	})
	dir, s, err := parseCluster(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return errors.New("usage: attach NAME -- COMMAND [ARGS...]")
	}
	command := fs.Args()[1:]
	if command[0] == "--" {
		command = command[1:]
	}
	if len(command) == 0 {
		return errors.New("usage: attach NAME -- COMMAND [ARGS...]")
	}
	binary, err := filepath.Abs(command[0])
	if err != nil {
		return err
	}
	c := component{Name: fs.Arg(0), Args: append([]string{binary}, command[1:]...), Env: env}
	for i, existing := range s.Components {
		if existing.Name == c.Name {
			stop(dir, existing, 15*time.Second)
			s.Components = append(s.Components[:i], s.Components[i+1:]...)
			break
		}
	}
	s.Components = append(s.Components, c)
	if err := s.save(dir); err != nil {
		return err
	}
	if err := start(dir, c); err != nil {
		return err
	}
	return waitHealthy(dir, c, 0)
}

func provision(args []string) error {
	fs := flag.NewFlagSet("provision", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster")
	volumes := fs.String("volumes", "", "directory that holds one directory per volume")
	_ = fs.Parse(args)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	return runProvisioner(ctx, *kubeconfig, *volumes)
}

func metricsAPI(args []string) error {
	fs := flag.NewFlagSet("metrics-api", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster")
	port := fs.Int("port", 0, "port on 127.0.0.1")
	cert := fs.String("cert", "", "serving certificate")
	key := fs.String("key", "", "serving key")
	_ = fs.Parse(args)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	return serveMetricsAPI(ctx, *kubeconfig, *port, *cert, *key)
}
