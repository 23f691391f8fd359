"""tandem's plugin SDK for Python components (built with componentize-py).

The same helpers the Rust SDK (`tandem-plugin-sdk`) gives plugins, computed the same way, so a
Python policy reasons about exactly the objective the built-in policies maximize:

- `errors`: the WIT `plugin-error` cases, raised as `componentize_py_types.Err`;
- `params`: declaring parameters and reading call parameters against them;
- `estimate`: the window-averaged accuracy estimate and PickConfigs;
- `policy`: allocations, `evaluate`, input checks, turning picks into a schedule, and the
  `cfg1`/`cfg2` retraining choice of the uniform baselines;
- `space`: Ekya's configuration grid (for configuration-space plugins);
- `estimator`: the throughput curve an estimator turns shares into speed with.

The modules work on the classes componentize-py generates from `wit/` (package
`tandem:plugin@0.2.0`, the newest; its types are a superset of 0.1.0's): every world's bindings hold the shared types at
`wit_world.imports.types`, so one SDK serves the `policy`, `config-space` and `estimator`
worlds.

Floating point: every sum is a plain left-to-right loop, never the builtin `sum()`, because
Python 3.12's `sum()` of floats is compensated (more exact than Rust's `Iterator::sum`), and a
Python port must decide bit for bit as the Rust one does.
"""
