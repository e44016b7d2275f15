"""The outputs the package's reorganisation must not change (issue: the wings, "nothing changes in what
it computes").

Each case is a small call of the public API whose result is recorded bit for bit in
``tests/data/identity.npz`` by ``python -m tests.identity_cases`` (run once, on the code before a
refactoring) and compared exactly by ``tests/test_identity.py``. The recorded file is a regression
reference, not a claim of correctness: the other tests check the numbers against closed forms,
mpmath and statistical bounds.
"""

import warnings

import numpy as np

import meanfield as mf

GRID_W = np.array([0.6, 1.2, 1.3956, 2.0, 3.5])
GRID_B = np.array([0.0, 0.05, 0.3, 1.0])


def _frame(df):
    """A DataFrame's numeric columns as one float64 array (column order kept), wall-clock times
    dropped."""
    num = df.select_dtypes("number").drop(columns=["seconds"], errors="ignore")
    return num.to_numpy(dtype=np.float64)


def cases():
    """Name -> zero-argument callable returning an array (or tuple of arrays)."""
    c = {}
    for act in ("tanh", "relu", "elu:0.5", "silu", "erf"):
        c[f"q_map/{act}"] = lambda a=act: mf.q_map(a, np.array([0.01, 0.5, 1.0, 4.0]), 1.7, 0.2)
        c[f"c_map/{act}"] = lambda a=act: mf.c_map(a, np.array([-0.9, 0.0, 0.5, 0.99]), 1.7, 0.2)
        c[f"cov_map/{act}"] = lambda a=act: mf.cov_map(a, 0.7, 1.3, np.array([-0.5, 0.2, 0.9]), 1.7, 0.2)
        c[f"propagate/{act}"] = lambda a=act: mf.propagate(a, 0.8, np.array([0.1, 0.9]), 1.7, 0.2, depth=20)
        c[f"fixed/{act}"] = lambda a=act: (mf.q_star(a, GRID_W, 0.3), mf.chi_1(a, GRID_W, 0.3),
                                           mf.c_star(a, GRID_W, 0.3), mf.chi_c(a, GRID_W, 0.3),
                                           *mf.depth_scales(a, GRID_W, 0.3))
        c[f"eoc/{act}"] = lambda a=act: mf.eoc(a, 0.0 if a == "relu" else GRID_B[1:])
    c["q_map/resnet"] = lambda: mf.q_map("tanh", np.array([0.5, 2.0]), 1.2, 0.1, arch="resnet")
    c["propagate/stable_resnet"] = lambda: mf.propagate("relu", 1.0, np.array([0.3, 0.8]), 1.4, 0.1,
                                                        depth=15, arch="stable_resnet")
    c["phase_diagram/tanh"] = lambda: _frame(mf.phase_diagram("tanh", GRID_W, GRID_B))
    c["eoc_curve/elu"] = lambda: _frame(mf.eoc_curve("elu", num=12))
    c["backward_gains/tanh"] = lambda: mf.backward_gains("tanh", 0.9, 1.5, c=0.4, depth=8)
    c["layer_gradient_scales/tanh"] = lambda: _frame(mf.layer_gradient_scales("tanh", 50, 6, 1.5, 0.2))
    for method in ("snip", "grasp", "magnitude", "random"):
        c[f"scr/{method}"] = lambda m=method: _frame(
            mf.simulate_critical_sparsity("tanh", 24, 6, 1.3, 0.2, trials=3, batch=16, method=m, seed=5))
    for arch in ("resnet", "stable_resnet"):
        c[f"scr/{arch}"] = lambda a=arch: _frame(
            mf.simulate_critical_sparsity("relu", 20, 5, 1.4, 0.1, trials=3, batch=16, arch=a, seed=7))
    c["scr/disconnect"] = lambda: _frame(mf.simulate_critical_sparsity(
        "tanh", 20, 8, 1.3956, 0.3, trials=3, batch=16, definition="disconnect", seed=9))
    for method in ("snip", "synflow"):
        c[f"kept/{method}"] = lambda m=method: _frame(mf.kept_per_layer(
            "tanh", 24, 6, 1.3956, 0.3, 0.8, trials=3, batch=16, seed=3, method=m))
    c["predict/wide"] = lambda: mf.predict_critical_sparsity("tanh", 100, [5, 20], 1.3956, 0.3,
                                                               finite_width=False, return_std=True)
    c["predict/finite"] = lambda: mf.predict_critical_sparsity("tanh", 60, 10, 2.5, 0.3, batch=32)
    c["predict/whole_net"] = lambda: mf.predict_critical_sparsity("tanh", 24, 8, 1.3956, 0.3, batch=16,
                                                                  finite_width="simulated")
    c["predict/resnet"] = lambda: mf.predict_critical_sparsity("relu", 60, 8, 1.4, 0.1, batch=32,
                                                                 arch="resnet")
    c["predict/disconnect"] = lambda: mf.predict_critical_sparsity("tanh", 40, 12, 2.0, 0.3, batch=16,
                                                                     definition="disconnect")
    c["predict_kept/finite"] = lambda: _frame(mf.predict_kept_per_layer("tanh", 60, 8, 1.3956, 0.3, 0.9,
                                                                          batch=32))
    c["bound"] = lambda: mf.ordered_phase_bound(np.array([50, 100]), np.array([[5], [10]]), 0.7)
    for method, rescale, sparse in (("none", False, False), ("snip", True, False), ("grasp", "data", False),
                                    ("synflow", "neuron", True), ("snip", "layer", True)):
        c[f"train/{method}-{rescale}-{sparse}"] = lambda m=method, r=rescale, s=sparse: _frame(mf.train(
            "tanh", "teacher", width=32, depth=4, sigma_w="eoc", sigma_b=0.3, method=m,
            sparsity=0.0 if m == "none" else 0.95, rescale=r, epochs=2, batch=64, seed=1,
            sparse=s, threads=1))
    c["train/resnet"] = lambda: _frame(mf.train("relu", "teacher", width=32, depth=4, sigma_w=1.4,
                                                sigma_b=0.1, arch="resnet", method="snip", sparsity=0.5,
                                                epochs=1, batch=64, seed=2, threads=1))
    return c


def evaluate(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn()
    if isinstance(out, tuple):
        return [np.asarray(o, dtype=np.float64) for o in out]
    return [np.asarray(out, dtype=np.float64)]


def record(path):
    arrays = {}
    for name, fn in cases().items():
        for i, a in enumerate(evaluate(fn)):
            arrays[f"{name}#{i}"] = a
    np.savez_compressed(path, **arrays)
    return arrays


if __name__ == "__main__":
    import pathlib

    out = pathlib.Path(__file__).parent / "data" / "identity.npz"
    arrays = record(out)
    print(f"{len(arrays)} arrays -> {out}")
