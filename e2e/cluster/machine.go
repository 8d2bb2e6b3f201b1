package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The machine settings a real node changes. The node sets the first two; the
// kubelet sets the kernel's panic and key limits, and kube-proxy route_localnet. Each
// is read before `up` and written back by `down`.
var nodeSysctls = []string{
	"net.ipv4.ip_forward",
	"net.bridge.bridge-nf-call-iptables",
	"vm.overcommit_memory",
	"vm.panic_on_oom",
	"kernel.panic",
	"kernel.panic_on_oops",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
	"net.ipv4.conf.all.route_localnet",
}

// The cgroup v1 hierarchies the kubelet makes its kubepods tree in.
var cgroupHierarchies = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "hugetlb"}

// machineSnapshot is what `up` found, kept in <dir>/machine.json for `down`.
type machineSnapshot struct {
	Sysctls  map[string]string `json:"sysctls"`
	IPTables string            `json:"iptables"`
	// VarLogContainers says whether /var/log/containers existed: the kubelet makes it
	// whatever its configuration says.
	VarLogContainers bool `json:"varLogContainers"`
	// NetnsMounted says whether /run/netns was a mount point. `ip netns add` makes it
	// one, bind-mounted over itself, which hides the pods' namespaces beneath it.
	NetnsMounted bool `json:"netnsMounted"`
}

func snapshotPath(dir string) string { return filepath.Join(dir, "machine.json") }

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

// prepareMachine records the settings the node changes, then sets forwarding and
// bridge filtering and creates the pod bridge with the node's address.
func prepareMachine(dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("a real node runs containers and changes the network: run `up --node real` as root")
	}
	for _, binary := range []string{containerdBinary, ctrBinary, runcBinary, filepath.Join(cniPluginDir, "bridge")} {
		if _, err := os.Stat(binary); err != nil {
			return fmt.Errorf("%s is missing: e2e/local-cluster.sh installs containerd, runc and containernetworking-plugins", binary)
		}
	}
	snap := machineSnapshot{Sysctls: map[string]string{}}
	for _, key := range nodeSysctls {
		raw, err := os.ReadFile(sysctlPath(key))
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
		snap.Sysctls[key] = strings.TrimSpace(string(raw))
	}
	saved, err := exec.Command("iptables-save").Output()
	if err != nil {
		return fmt.Errorf("iptables-save: %w", err)
	}
	snap.IPTables = string(saved)
	_, statErr := os.Stat("/var/log/containers")
	snap.VarLogContainers = statErr == nil
	snap.NetnsMounted = isMountPoint("/run/netns")
	raw, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(snapshotPath(dir), raw, 0o600); err != nil {
		return err
	}
	for key, value := range map[string]string{"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"} {
		if err := os.WriteFile(sysctlPath(key), []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
	}
	// The bridge exists before the first pod so that the API server can advertise
	// the node's address from the start.
	for _, args := range [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", nodeIP + "/16", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// restoreMachine undoes what the node did to the machine: it kills what runs in the
// node's pods and their shims, unmounts what the kubelet and containerd mounted under
// dir, removes the pod cgroups, network namespaces, bridge, iptables rules and
// ipsets, and writes back the recorded sysctls. It goes on after an error, so that
// one leftover does not keep the rest in place, and returns every error.
func restoreMachine(dir string) error {
	raw, err := os.ReadFile(snapshotPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var snap machineSnapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return fmt.Errorf("%s: %w", snapshotPath(dir), err)
	}
	var errs []error
	killPods(dir)
	errs = append(errs, unmountUnder(dir)...)
	errs = append(errs, removeCgroups()...)
	if !snap.NetnsMounted && isMountPoint("/run/netns") {
		if err := syscall.Unmount("/run/netns", syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount /run/netns: %w", err))
		}
	}
	errs = append(errs, removeNetworkNamespaces()...)
	if err := exec.Command("ip", "link", "show", bridgeName).Run(); err == nil {
		if out, err := exec.Command("ip", "link", "delete", bridgeName).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %v: %s", bridgeName, err, out))
		}
	}
	errs = append(errs, restoreIPTables(snap.IPTables)...)
	if out, err := exec.Command("ipset", "list", "-n").Output(); err == nil {
		for _, set := range strings.Fields(string(out)) {
			if strings.HasPrefix(set, "KUBE-") || strings.HasPrefix(set, "inet") {
				_ = exec.Command("ipset", "destroy", set).Run()
			}
		}
	}
	for key, value := range snap.Sysctls {
		if err := os.WriteFile(sysctlPath(key), []byte(value), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", key, value, err))
		}
	}
	if !snap.VarLogContainers {
		_ = os.RemoveAll("/var/log/containers")
	}
	if err := os.Remove(snapshotPath(dir)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killPods kills every process in the node's pod cgroups, then the containerd
// shims that served this node's containerd.
func killPods(dir string) {
	for attempt := 0; attempt < 20; attempt++ {
		pids := map[int]bool{}
		for _, hierarchy := range []string{"pids", "memory", "cpu"} {
			_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup", hierarchy, "kubepods"), func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				raw, _ := os.ReadFile(path)
				for _, field := range strings.Fields(string(raw)) {
					if pid, err := strconv.Atoi(field); err == nil {
						pids[pid] = true
					}
				}
				return nil
			})
		}
		for _, pid := range shimPids(dir) {
			pids[pid] = true
		}
		if len(pids) == 0 {
			return
		}
		for pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shimPids finds the runc shims started for the node's containerd, by its socket.
func shimPids(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") &&
			strings.Contains(string(cmdline), containerdSocket(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountPoints lists the mount points of this namespace, as /proc/self/mountinfo
// gives them (its fifth field, with spaces decoded).
func mountPoints() ([]string, error) {
	file, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var points []string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		if fields := strings.Fields(scanner.Text()); len(fields) > 4 {
			points = append(points, strings.ReplaceAll(fields[4], `\040`, " "))
		}
	}
	return points, scanner.Err()
}

// isMountPoint says whether path is the mount point of a mount in this namespace.
func isMountPoint(path string) bool {
	points, err := mountPoints()
	return err == nil && slices.Contains(points, path)
}

// unmountUnder detaches every mount below dir, the deepest first.
func unmountUnder(dir string) []error {
	all, err := mountPoints()
	if err != nil {
		return []error{err}
	}
	var points []string
	for _, point := range all {
		if strings.HasPrefix(point, dir+"/") {
			points = append(points, point)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, point := range points {
		if err := syscall.Unmount(point, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", point, err))
		}
	}
	return errs
}

// removeCgroups removes the kubelet's kubepods tree from every hierarchy, leaves first.
func removeCgroups() []error {
	var errs []error
	for _, hierarchy := range cgroupHierarchies {
		root := filepath.Join("/sys/fs/cgroup", hierarchy, "kubepods")
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errs
}

// removeNetworkNamespaces removes the pods' network namespaces, which containerd
// pins under /var/run/netns.
func removeNetworkNamespaces() []error {
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil {
		return nil
	}
	var errs []error
	for _, entry := range entries {
		if !strings.HasPrefix(entry.Name(), "cni-") {
			continue
		}
		path := filepath.Join("/var/run/netns", entry.Name())
		_ = syscall.Unmount(path, syscall.MNT_DETACH)
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("remove network namespace %s: %w", path, err))
		}
	}
	return errs
}

// restoreIPTables empties the tables the node's programs wrote to, then loads the
// rules that were there before.
func restoreIPTables(saved string) []error {
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		for _, flag := range []string{"-F", "-X"} {
			if out, err := exec.Command("iptables", "-t", table, flag).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("iptables -t %s %s: %v: %s", table, flag, err, out))
			}
		}
	}
	if strings.TrimSpace(saved) != "" {
		cmd := exec.Command("iptables-restore")
		cmd.Stdin = strings.NewReader(saved)
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables-restore: %v: %s", err, out))
		}
	}
	return errs
}
