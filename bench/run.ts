/** `make bench`: every benchmark in turn, each printing its own table. */
import { main as discovery } from "./discovery.js";

for (const bench of [discovery]) {
  await bench();
}
