package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// component is one process of the cluster, as `up` started it and `restart` starts
// it again.
type component struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	// Env is added to the environment the component inherits.
	Env []string `json:"env,omitempty"`
	// Health is an HTTP(S) URL that answers 200 once the process serves; empty for
	// processes that serve nothing.
	Health string `json:"health,omitempty"`
}

func pidFile(dir, name string) string { return filepath.Join(dir, "run", name+".pid") }
func logFile(dir, name string) string { return filepath.Join(dir, "logs", name+".log") }

// start launches the component in its own session, so that it outlives `up` and a
// terminal's signals, with its output appended to logs/<name>.log.
func start(dir string, c component) error {
	if _, err := os.Stat(c.Args[0]); err != nil {
		return fmt.Errorf("%s: %s is missing: build the tools with e2e/tools/build.sh", c.Name, c.Args[0])
	}
	out, err := os.OpenFile(logFile(dir, c.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Name, err)
	}
	if err := os.WriteFile(pidFile(dir, c.Name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// running returns the pid of the component if its process still runs the binary it
// was started with (a pid file can outlive its process, and pids are reused).
func running(dir string, c component) (int, bool) {
	pid, err := processOf(dir, c)
	return pid, err == nil
}

// processOf says why the component is not running, or returns its pid.
func processOf(dir string, c component) (int, error) {
	raw, err := os.ReadFile(pidFile(dir, c.Name))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// A binary rebuilt while its process runs shows as "PATH (deleted)".
	if strings.TrimSuffix(exe, " (deleted)") != c.Args[0] {
		return 0, fmt.Errorf("process %d runs %s, not %s", pid, exe, c.Args[0])
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	// A zombie has exited: only its parent has not reaped it yet. The state follows
	// the command name, which is in parentheses and may hold spaces.
	if fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(fields) > 0 && fields[0] == "Z" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return pid, nil
}

// stop sends SIGTERM, and SIGKILL after the grace period.
func stop(dir string, c component, grace time.Duration) {
	pid, ok := running(dir, c)
	if !ok {
		os.Remove(pidFile(dir, c.Name))
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if _, ok := running(dir, c); !ok {
			os.Remove(pidFile(dir, c.Name))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 50; i++ {
		if _, ok := running(dir, c); !ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(pidFile(dir, c.Name))
}

// waitHealthy polls the component's health URL until it answers 200, failing early
// with the end of its log when the process exits.
func waitHealthy(dir string, c component, timeout time.Duration) error {
	if c.Health == "" {
		if _, err := processOf(dir, c); err != nil {
			return exited(dir, c, err)
		}
		return nil
	}
	client, err := healthClient(dir)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if _, err := processOf(dir, c); err != nil {
			return exited(dir, c, err)
		}
		resp, err := client.Get(c.Health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become healthy within %s (%s: %s); see %s",
		c.Name, timeout, c.Health, last, logFile(dir, c.Name))
}

func exited(dir string, c component, why error) error {
	raw, _ := os.ReadFile(logFile(dir, c.Name))
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Errorf("%s is not running (%v); the end of %s:\n  %s", c.Name, why,
		logFile(dir, c.Name), strings.Join(lines, "\n  "))
}

// healthClient trusts the cluster's CA and presents the admin certificate.
func healthClient(dir string) (*http.Client, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki", "admin.crt"), filepath.Join(dir, "pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		}},
	}, nil
}

// Listening ports come from below the kernel's ephemeral range. A port that
// `bind(0)` handed out and we released is free game for the local end of any
// outgoing connection, and the API server opens many to etcd while the processes
// after it start: the metrics API once lost its port that way ("address already
// in use"). The range also stays clear of the kubelet's, kube-proxy's and
// kube-router's fixed ports (10248–10256, 20244) and of the NodePort range
// (30000–32767), which kube-proxy redirects on a real node's address.
const (
	listenPortLow  = 21000
	listenPortHigh = 30000 // exclusive
)

// freePorts picks n distinct ports on 127.0.0.1 that nothing listens on.
func freePorts(n int) ([]int, error) {
	high := listenPortHigh
	if low, err := ephemeralPortLow(); err == nil && low < high {
		high = low
	}
	if high <= listenPortLow {
		return nil, fmt.Errorf("the ephemeral port range starts at %d, leaving no ports in %d-%d for the cluster's servers", high, listenPortLow, listenPortHigh-1)
	}
	ports := []int{}
	taken := map[int]bool{}
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt == 1000 {
			return nil, fmt.Errorf("found only %d free ports in %d-%d after %d attempts", len(ports), listenPortLow, high-1, attempt)
		}
		port := listenPortLow + mrand.IntN(high-listenPortLow)
		if taken[port] {
			continue
		}
		listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		listener.Close()
		taken[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralPortLow is the first port of the kernel's ephemeral range.
func ephemeralPortLow() (int, error) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0, fmt.Errorf("ip_local_port_range: unexpected %q", data)
	}
	return strconv.Atoi(fields[0])
}
