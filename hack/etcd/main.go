// Command etcd is our own minimal entry point for the etcd server.
//
// hack/build-k8s.sh compiles it against go.etcd.io/etcd/server/v3 at a pinned
// version fetched through the Go module proxy, so the test control plane does
// not depend on a prebuilt etcd release download. All flag parsing and
// behaviour come from the library's etcdmain package.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
