/**
 * The multi-node suite, in a fixed order, against one local cluster of three nodes
 * (x710, e810, cx6dx): the cluster, filters per node, placement of claims, VFs of two
 * nodes on one wire, draining a node, a node plugin killed on one node. One file, so the
 * order is the one below; each case works in namespaces of its own.
 */
import "./cases/cluster.js";
