"""The shared training core: mesh and sharding, train state, the jitted step, checkpoints, metrics, the loop."""
