/**
 * The multi-node suite, in a fixed order, against one local cluster of three nodes
 * (E810, ConnectX-6 Dx, X540; hack/local-cluster.sh up --nodes 3): the cluster, filters per node,
 * placement of claims, a Deployment spread over the nodes, VFs of two nodes on one wire,
 * draining a node, a node plugin killed on one node. One file, so the order is the one
 * below; each case works in a namespace of its own and leaves nothing prepared.
 */
import "./cases/cluster.js";
import "./cases/filters.js";
import "./cases/placement.js";
import "./cases/spread.js";
import "./cases/ping.js";
import "./cases/drain.js";
import "./cases/plugin-kill.js";
