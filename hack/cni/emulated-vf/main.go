// Command emulated-vf is a CNI plugin for tests and demos only: it puts a VF of
// an emulated host into a pod.
//
// On real hardware the SR-IOV CNI (`type: sriov`) moves the VF's netdev into the
// pod's network namespace. An emulated host (`dra-driver-sriov emulate
// --netdevs`) has no real VFs: each "VF netdev" is one end of a veth pair. This
// plugin looks up which netdev the emulated sysfs lists for the VF, names it as
// the `device` of the reference `host-device` plugin (searched on CNI_PATH) and
// runs that plugin, with every other configuration key (ipam, ...) passed on
// untouched. Do not use it on real hardware.
//
// The configuration keys it consumes (and does not pass on):
//
//	deviceID   PCI address of the VF, e.g. 0000:3b:02.1 (injected by the driver)
//	pciBusID   the same address, injected beside deviceID for host-device on real
//	           hardware; dropped here, as host-device would look for it in the real
//	           sysfs
//	hostRoot   root directory of the emulated host (`--host-root`), default "/"
//
// host-device gets this process's environment, stdout and stderr, and its exit
// status becomes ours. Only the wrapper's own failures are reported here, as a
// CNI error result on stdout and exit status 1.
//
// The binary is static (CGO_ENABLED=0), so it runs in any image, even one with
// no shell, no nsenter and no `ip`: hack/build-cni.sh builds it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	delegate = "host-device"

	// CNI error codes (CNI spec, "Error"): 6 failed to decode content,
	// 7 invalid network config, 5 I/O failure.
	codeIOFailure    = 5
	codeDecodeFailed = 6
	codeInvalidConf  = 7
)

// The cniVersion of our own error results when the configuration has none.
var defaultCNIVersion = json.RawMessage(`"1.0.0"`)

// A PCI address as the driver writes it (lower-case hex, as the kernel
// names devices in sysfs). Checked before it becomes part of a path.
var pciAddress = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$`)

// cniError is a CNI error result.
type cniError struct {
	CNIVersion json.RawMessage `json:"cniVersion"`
	Code       int             `json:"code"`
	Msg        string          `json:"msg"`
	Details    string          `json:"details"`
}

// fail prints a CNI error result on stdout and exits with status 1.
func fail(cniVersion json.RawMessage, code int, msg, details string) {
	out, err := json.Marshal(cniError{CNIVersion: cniVersion, Code: code, Msg: msg, Details: details})
	if err != nil {
		// Not expected: cniVersion is valid JSON, the rest are strings.
		fmt.Fprintf(os.Stderr, "emulated-vf: %s: %s\n", msg, details)
		os.Exit(1)
	}
	os.Stdout.Write(out)
	os.Exit(1)
}

// findDelegate returns the first executable host-device on CNI_PATH.
func findDelegate(cniVersion json.RawMessage) string {
	cniPath := os.Getenv("CNI_PATH")
	for _, dir := range strings.Split(cniPath, ":") {
		if dir == "" {
			continue
		}
		candidate := filepath.Join(dir, delegate)
		if unix.Access(candidate, unix.X_OK) == nil {
			return candidate
		}
	}
	fail(cniVersion, codeInvalidConf, "the "+delegate+" CNI plugin is not on CNI_PATH", "CNI_PATH="+cniPath)
	return ""
}

// vfNetdev returns the first (by name) netdev that the emulated sysfs lists
// under the VF, where the kernel lists the netdev of a real VF, or "" when
// there is none or the directory cannot be read.
func vfNetdev(hostRoot, deviceID string) string {
	entries, err := os.ReadDir(filepath.Join(hostRoot, "sys/bus/pci/devices", deviceID, "net"))
	if err != nil || len(entries) == 0 {
		return ""
	}
	return entries[0].Name() // os.ReadDir sorts by name.
}

// hasInterface reports whether the network namespace at netnsPath has an
// interface called ifname. It looks from a thread of its own that enters the
// namespace and is never given back: a goroutine that ends while locked to its
// thread takes the thread with it, so no other goroutine ever runs in that
// namespace.
func hasInterface(netnsPath, ifname string) bool {
	found := make(chan bool, 1)
	go func() {
		runtime.LockOSThread()
		found <- interfaceInNetns(netnsPath, ifname)
	}()
	return <-found
}

// interfaceInNetns moves the calling thread, which must be locked to its
// goroutine, into the network namespace at netnsPath and looks for ifname there.
func interfaceInNetns(netnsPath, ifname string) bool {
	netns, err := os.Open(netnsPath)
	if err != nil {
		return false
	}
	defer netns.Close()
	if err := unix.Setns(int(netns.Fd()), unix.CLONE_NEWNET); err != nil {
		return false
	}
	_, err = net.InterfaceByName(ifname)
	return err == nil
}

// popKey removes key from config and returns its value, or nil when the key
// is absent or null.
func popKey(config map[string]json.RawMessage, key string) json.RawMessage {
	raw, present := config[key]
	delete(config, key)
	if !present || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	return raw
}

// withoutEnv returns environ without the variable name.
func withoutEnv(environ []string, name string) []string {
	kept := make([]string, 0, len(environ))
	for _, entry := range environ {
		if !strings.HasPrefix(entry, name+"=") {
			kept = append(kept, entry)
		}
	}
	return kept
}

// runDelegate runs host-device with stdin and environ, on our stdout and
// stderr, and exits with its exit status.
func runDelegate(cniVersion json.RawMessage, path string, stdin []byte, environ []string) {
	cmd := exec.Command(path)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = environ
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exit):
		// Killed by a signal: the status a shell would give it.
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			os.Exit(128 + int(status.Signal()))
		}
		os.Exit(exit.ExitCode())
	default:
		fail(cniVersion, codeIOFailure, "cannot run "+path, err.Error())
	}
}

func main() {
	command := os.Getenv("CNI_COMMAND")
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(defaultCNIVersion, codeIOFailure, "cannot read the network configuration on stdin", err.Error())
	}
	if command == "VERSION" {
		// This wrapper supports the versions host-device supports.
		runDelegate(defaultCNIVersion, findDelegate(defaultCNIVersion), stdin, os.Environ())
	}

	// Only the top level is decoded: the values go on to host-device as they
	// are (compacted).
	var config map[string]json.RawMessage
	var typeErr *json.UnmarshalTypeError
	switch err := json.Unmarshal(stdin, &config); {
	case errors.As(err, &typeErr):
		fail(defaultCNIVersion, codeDecodeFailed, "the network configuration on stdin is not a JSON object",
			"it is a JSON "+typeErr.Value)
	case err == nil && config == nil:
		fail(defaultCNIVersion, codeDecodeFailed, "the network configuration on stdin is not a JSON object",
			"it is null")
	case err != nil:
		fail(defaultCNIVersion, codeDecodeFailed, "the network configuration on stdin is not JSON", err.Error())
	}
	cniVersion, ok := config["cniVersion"]
	if !ok {
		cniVersion = defaultCNIVersion
	}
	var deviceID string
	if raw := popKey(config, "deviceID"); raw != nil && json.Unmarshal(raw, &deviceID) != nil {
		fail(cniVersion, codeInvalidConf, "deviceID is not a string", "it is the VF's PCI address, e.g. 0000:3b:02.1")
	}
	// host-device would look the emulated VF's address up in the real sysfs.
	popKey(config, "pciBusID")
	hostRoot := "/"
	if raw := popKey(config, "hostRoot"); raw != nil && json.Unmarshal(raw, &hostRoot) != nil {
		fail(cniVersion, codeInvalidConf, "hostRoot is not a string", "it is the root directory of the emulated host")
	}
	if deviceID == "" {
		fail(cniVersion, codeInvalidConf, "deviceID is missing", "the DRA driver injects the VF's PCI address as deviceID")
	}
	delegatePath := findDelegate(cniVersion)
	environ := os.Environ()

	netdev := ""
	validID := pciAddress.MatchString(deviceID)
	if validID {
		netdev = vfNetdev(hostRoot, deviceID)
	}
	if netdev == "" {
		if command != "DEL" {
			if !validID {
				fail(cniVersion, codeInvalidConf, fmt.Sprintf("deviceID %q is not a PCI address", deviceID),
					"expected the form 0000:3b:02.1")
			}
			fail(cniVersion, codeInvalidConf, fmt.Sprintf("VF %s has no netdev under %s", deviceID, hostRoot),
				"is it bound to its kernel driver, and was the emulated host built with --netdevs?")
		}
		// DEL has to succeed when things are already gone. host-device finds
		// the pod's interface by CNI_IFNAME and its host name in the alias it
		// saved on ADD, so any device name does here.
		if ifname, set := os.LookupEnv("CNI_IFNAME"); set {
			netdev = ifname
		} else {
			netdev = "unknown"
		}
	}
	device, err := json.Marshal(netdev)
	if err != nil {
		fail(cniVersion, codeInvalidConf, "cannot encode the device name", err.Error())
	}
	config["device"] = device

	if netns := os.Getenv("CNI_NETNS"); command == "DEL" && netns != "" && !hasInterface(netns, os.Getenv("CNI_IFNAME")) {
		// The interface has left the pod already. host-device 1.1.1 fails a
		// second DEL ("Link not found") although the spec wants DEL to be
		// idempotent; it succeeds when CNI_NETNS is not set.
		environ = withoutEnv(environ, "CNI_NETNS")
	}

	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(config); err != nil {
		fail(cniVersion, codeInvalidConf, "cannot encode the configuration for "+delegate, err.Error())
	}
	runDelegate(cniVersion, delegatePath, out.Bytes(), environ)
}
