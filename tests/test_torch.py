"""meanfield.torch against the numpy core on the same weights, torch's pruning conventions, the
mask files, EOC initialisation and the ResNet models (docs/torch.md)."""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")  # the [torch] extra, which the README's test command installs

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import meanfield.torch as mt  # noqa: E402
from meanfield import eoc  # noqa: E402
from meanfield._validate import InputError, InputTypeError  # noqa: E402
from meanfield.nets import forward, init_network  # noqa: E402
from meanfield.pruning import critical_sparsity, global_masks, rescale  # noqa: E402
from meanfield.pruning import scores as core_scores  # noqa: E402
from meanfield.torch.models import resnet, stable_resnet  # noqa: E402

ARCHS = ["ffnn", "resnet", "stable_resnet"]


def _case(arch, seed=0, width=12, depth=4, n_in=7, classes=3, B=10):
    rng = np.random.default_rng(seed)
    net = init_network("tanh", width, depth, 1.6, 0.2, n_in=n_in, classes=classes, arch=arch,
                       dtype=np.float64, rng=rng)
    X = rng.standard_normal((B, n_in))
    y = rng.integers(0, classes, B)
    return net, X, y


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("arch", ARCHS)
def test_from_network_computes_the_same_logits(arch):
    net, X, _ = _case(arch)
    out = mt.from_network(net)(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(out, forward(net, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", ["snip", "grasp", "synflow", "magnitude"])
def test_scores_and_masks_agree_with_the_core(arch, method):
    """Same weights, float64: the torch scores (autograd, GraSP by double backward) against the
    core's (hand-written backward, GraSP by the R-operator) to 1e-5 relative, the masks at 90 %
    identical."""
    net, X, y = _case(arch)
    model = mt.from_network(net)
    kw = dict(sparsity=0.9) if method == "synflow" else {}
    ref = core_scores(net, X, y, method, **kw) if method != "synflow" else None
    if method == "synflow":
        from meanfield.pruning import synflow_scores
        ref = synflow_scores(net, 0.9, iterations=20)
        got = mt.scores(model, torch.from_numpy(X), None, "synflow", sparsity=0.9,
                        synflow_iterations=20)
    else:
        got = mt.scores(model, torch.from_numpy(X), torch.from_numpy(y), method)
    got = [v.numpy() for v in got.values()]
    for g, r in zip(got, ref):
        assert g.shape == r.shape and _rel(g, r) < 1e-5
    for a, b in zip(global_masks(got, 0.9), global_masks(ref, 0.9)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("definition", ["layer", "disconnect"])
def test_critical_sparsity_agrees_with_the_core(arch, definition):
    net, X, y = _case(arch, seed=3, width=6, depth=5)
    model = mt.from_network(net)
    for method in ("snip", "magnitude"):
        ref = critical_sparsity(core_scores(net, X, y, method), definition=definition, arch=arch)
        got = mt.critical_sparsity(model, torch.from_numpy(X), torch.from_numpy(y), method,
                                   definition)
        assert got == ref


def test_grasp_temperature_and_batches():
    """T = 1 is the plain loss (the core's T = 1 too); two batches sum the gradients, which for
    SNIP equals the gradient of the sum of the two batch means."""
    net, X, y = _case("ffnn", seed=5)
    model = mt.from_network(net)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    got = mt.scores(model, Xt, yt, "grasp", grasp_temperature=1.0)
    ref = core_scores(net, X, y, "grasp", grasp_temperature=1.0)
    assert max(_rel(g.numpy(), r) for g, r in zip(got.values(), ref)) < 1e-5
    two = mt.scores(model, method="snip", batches=[(Xt[:5], yt[:5]), (Xt[5:], yt[5:])])
    m = mt.from_network(net)
    (F.cross_entropy(m(Xt[:5]), yt[:5]) + F.cross_entropy(m(Xt[5:]), yt[5:])).backward()
    for (_name, v), lin in zip(two.items(), m.layers):
        torch.testing.assert_close(v, (lin.weight * lin.weight.grad).abs().detach())


def test_snip_on_a_conv_net_matches_finite_differences():
    """An independent check of the conv path: |w ∂ℒ/∂w| against central differences of the loss
    for a few weights of every layer (float64, h = 1e-6)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 3, 1),
                          nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)).double()
    X, y = torch.randn(5, 2, 6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0])
    sc = mt.scores(model, X, y, "snip")
    gen = np.random.default_rng(0)
    for name, m in mt.prunable(model):
        for _ in range(3):
            idx = tuple(int(gen.integers(0, n)) for n in m.weight.shape)
            with torch.no_grad():
                w0 = m.weight[idx].item()
                m.weight[idx] = w0 + 1e-6
                up = F.cross_entropy(model(X), y).item()
                m.weight[idx] = w0 - 1e-6
                down = F.cross_entropy(model(X), y).item()
                m.weight[idx] = w0
            fd = abs(w0 * (up - down) / 2e-6)
            assert sc[name][idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-11)


def test_synflow_linearises_functional_activations_too():
    """ℛ of the linearised network is 1ᵀ |W²| |W¹| 1 (no biases, identity activations), whether
    the model calls nn.Tanh, F.relu or torch.tanh; its scores are |θ ∂ℛ/∂θ| / ℛ."""
    torch.manual_seed(1)

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 5), nn.Linear(5, 2)

        def forward(self, x):
            return self.b(F.relu(torch.tanh(self.a(x)) - 0.0))

    model = Functional().double()
    X = torch.randn(3, 4, dtype=torch.float64)
    sc = mt.scores(model, X, None, "synflow", synflow_iterations=1)
    A, B = model.a.weight.detach().abs(), model.b.weight.detach().abs()
    R = (B @ A @ torch.ones(4, dtype=torch.float64)).sum()
    ref_a = A * ((B.T @ torch.ones(2, dtype=torch.float64))[:, None] * torch.ones(1, 4,
                                                                                  dtype=torch.float64))
    torch.testing.assert_close(sc["a.weight"], ref_a / R)
    ref_b = B * (A @ torch.ones(4, dtype=torch.float64))[None, :]
    torch.testing.assert_close(sc["b.weight"], ref_b / R)


@pytest.mark.parametrize("mode", ["neuron", "layer"])
def test_prune_at_init_follows_torch_prune_and_the_core_rescaling(mode):
    net, X, y = _case("resnet", seed=2)
    model = mt.from_network(net)
    table = mt.prune_at_init(model, torch.from_numpy(X), torch.from_numpy(y), "snip", 0.8,
                             rescale=mode)
    masks = global_masks(core_scores(net, X, y, "snip"), 0.8)
    ref = rescale(net, masks, mode)
    for lin, m, w in zip(model.layers, masks, ref.weights):
        assert hasattr(lin, "weight_orig") and hasattr(lin, "weight_mask")
        assert lin._forward_pre_hooks  # torch.nn.utils.prune's hook
        np.testing.assert_array_equal(lin.weight_mask.numpy().astype(bool), m)
        np.testing.assert_allclose(lin.weight.detach().numpy(), w, rtol=1e-12, atol=0)
    assert table.kept.tolist() == [int(m.sum()) for m in masks]
    np.testing.assert_allclose(model(torch.from_numpy(X)).detach().numpy(), forward(ref, X),
                               rtol=1e-10, atol=1e-12)


def test_kept_per_layer_and_local_scope():
    net, X, y = _case("ffnn", seed=4, width=20)
    model = mt.from_network(net)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    t = mt.kept_per_layer(model, Xt, yt, "magnitude", 0.75, scope="local")
    n = [w.size for w in net.weights]
    assert t.weights.tolist() == n
    assert t.kept.tolist() == [k - (k - int(np.floor(0.25 * k + 1e-9))) for k in n]
    assert not hasattr(model.layers[0], "weight_mask")  # the model is not changed


def test_save_and_load_masks_round_trip(tmp_path):
    torch.manual_seed(0)
    model = resnet(8, width=4, activation="tanh", sigma_b=0.3, seed=1)
    fresh = resnet(8, width=4, activation="tanh", sigma_b=0.3, seed=1)
    X, y = torch.randn(6, 3, 8, 8), torch.arange(6) % 10
    mt.prune_at_init(model, X, y, "snip", 0.9)
    report = mt.save_masks(model, tmp_path / "masks.pt")
    on_disk = json.loads((tmp_path / "masks.json").read_text())
    assert on_disk == report
    n = sum(m.weight.numel() for _, m in mt.prunable(model))
    kept = sum(int(m.weight_mask.sum()) for _, m in mt.prunable(model))
    assert (report["total"], report["unpruned"]) == (n, kept)
    mt.load_masks(fresh, tmp_path / "masks.pt")
    assert torch.equal(fresh(X), model(X))
    with pytest.raises(InputError, match="names no prunable layer"):
        mt.load_masks(nn.Sequential(nn.Linear(2, 2)), tmp_path / "masks.pt")


def test_init_eoc_draws_the_eoc_variance():
    """σ_w² / fan_in per weight and σ_b² per bias: the sample variances of 400 × 400 weights
    within 4 standard errors (SE of a variance of n normals: v √(2 / n))."""
    model = nn.Sequential(nn.Linear(400, 400), nn.Tanh(), nn.Linear(400, 400), nn.Tanh(),
                          nn.Linear(400, 10))
    table = mt.init_eoc_(model, "tanh", 0.3, seed=0)
    sw = float(eoc("tanh", 0.3)[0])
    assert table.sigma_w.tolist() == [sw] * 3 and table.treatment.tolist() == ["eoc"] * 3
    W = torch.cat([model[0].weight.flatten(), model[2].weight.flatten()]).double()
    v, n = sw**2 / 400, W.numel()
    assert abs(W.var().item() - v) < 4 * v * (2 / n) ** 0.5
    b = torch.cat([model[0].bias, model[2].bias]).double()
    assert abs(b.var().item() - 0.09) < 4 * 0.09 * (2 / b.numel()) ** 0.5


def test_init_eoc_refuses_what_it_cannot_place():
    with pytest.raises(InputError, match="BatchNorm1d"):
        mt.init_eoc_(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), "tanh", 0.3)
    with pytest.raises(InputError, match="'relu'"):
        mt.init_eoc_(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), "tanh", 0.3)
    with pytest.raises(InputError, match="MaxPool2d"):
        mt.init_eoc_(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), "tanh", 0.3)
    with pytest.raises(InputError, match="no EOC"):
        mt.init_eoc_(nn.Sequential(nn.Linear(3, 3)), "relu", 0.3)
    t = mt.init_eoc_(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.MaxPool2d(2)), "relu",
                     0.0, norm="keep", unknown="ignore")
    assert t.treatment.tolist() == ["eoc", "kept", "ignored"]
    assert t.sigma_w[0] == pytest.approx(2**0.5, rel=1e-10)


def test_errors_name_the_parameter():
    model = nn.Sequential(nn.Linear(3, 2))
    X, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    with pytest.raises(InputError, match="`method`"):
        mt.scores(model, X, y, "obd")
    with pytest.raises(InputError, match="`sparsity` == None"):
        mt.scores(model, X, y, "synflow")
    with pytest.raises(InputError, match="`seed` == None"):
        mt.scores(model, X, y, "random")
    with pytest.raises(InputTypeError, match="integer class"):
        mt.scores(model, X, y.float(), "snip")
    with pytest.raises(InputError, match="`sparsity`"):
        mt.prune_at_init(model, X, y, "snip", 1.0)
    with pytest.raises(InputError, match="`rescale`"):
        mt.prune_at_init(model, X, y, "snip", 0.5, rescale="data")
    with pytest.raises(InputTypeError, match="`model`"):
        mt.scores("net", X, y)
    with pytest.raises(InputError, match="no Linear or Conv"):
        mt.scores(nn.Tanh(), X, y)
    with pytest.raises(InputError, match="6k \\+ 2"):
        resnet(30)


def test_resnet_models():
    """6k + 2 layers with weights (stem, 6k convs, readout) plus 2 projection shortcuts; the
    Stable ResNet's branch scale is 1/√(3k); ReLU's EOC is σ_w = √2."""
    for depth in (8, 20, 32):
        k = (depth - 2) // 6
        m = stable_resnet(depth, width=4, seed=0)
        names = [n for n, _ in mt.prunable(m)]
        assert len(names) == depth + 2 and sum("shortcut" in n for n in names) == 2
        assert m.alpha == pytest.approx(1 / (3 * k) ** 0.5)
        assert m(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    assert resnet(8, width=4).alpha == 1.0
    assert np.allclose(resnet(8, seed=0).init_table.sigma_w, 2**0.5, rtol=1e-10, atol=0)
    bn = resnet(8, width=4, norm="batch", seed=0)
    assert "kept" in set(bn.init_table.treatment)


def test_synflow_critical_sparsity_by_bisection():
    """SynFlow's s_cr by bisection over the target: the mask at the target just above it has an
    empty layer and the one just below has none."""
    net, X, _ = _case("ffnn", seed=6, width=8, depth=6)
    model = mt.from_network(net)
    Xt = torch.from_numpy(X)
    s = mt.critical_sparsity(model, Xt, None, "synflow", synflow_iterations=5, tol=1e-3)
    assert 0.5 < s < 1
    below = mt.kept_per_layer(model, Xt, None, "synflow", s - 2e-3, synflow_iterations=5)
    assert not below.emptied.any()


def test_import_meanfield_does_not_import_torch():
    code = "import sys, meanfield; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n import meanfield.torch\nexcept ImportError as e: print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "meanfield-toolkit[torch]" in out


def test_torchvision_resnet18_is_scored_whole():
    """A model meanfield did not build: torchvision's ResNet-18 (random weights, no download),
    BatchNorm and max pooling included. 21 prunable tensors (the stem, 16 block convs, 3 1 × 1
    downsample shortcuts, the readout); the model is left unchanged by scoring; emptying every
    block conv of one layer does not disconnect it (its skips carry on), emptying the stem does."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    table = mt.init_eoc_(model, "relu", 0.0, norm="keep", unknown="ignore", seed=0)
    assert set(table.treatment) == {"eoc", "kept", "ignored"}
    names = [n for n, _ in mt.prunable(model)]
    assert len(names) == 21 and sum("downsample" in n for n in names) == 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    for method in ("snip", "grasp"):
        sc = mt.scores(model, X, y, method)
        assert list(sc) == names and all(torch.isfinite(v).all() for v in sc.values())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    flow = mt.masks._Flow(model, (3, 32, 32))
    ones = [np.ones(tuple(m.weight.shape), bool) for _, m in mt.prunable(model)]
    assert flow.connected(ones)
    cut = [np.zeros_like(m) if n.startswith("layer3.1.conv") else m for n, m in zip(names, ones)]
    assert flow.connected(cut)
    assert not flow.connected([np.zeros_like(m) if n == "conv1.weight" else m
                               for n, m in zip(names, ones)])


def test_readme_torch_snippet_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("**Your own PyTorch model**", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    torch.manual_seed(0)
    ns = dict(model=nn.Sequential(nn.Linear(10, 30), nn.Tanh(), nn.Linear(30, 3)),
              X=torch.randn(16, 10), y=torch.arange(16) % 3)
    exec(compile(block, "README.md", "exec"), ns)
    kept = sum(int(m.weight_mask.sum()) for _, m in mt.prunable(ns["model"]))
    assert kept == 39  # 10 % of the 390 weights


@pytest.mark.parametrize("module", ["scoring", "masks", "init", "convert", "models"])
def test_doctests_of_the_torch_wing(module):
    """The wing's docstring examples (pytest's doctest collection skips meanfield/torch, which
    imports torch: see pyproject.toml)."""
    import doctest
    import importlib

    mod = importlib.import_module(f"meanfield.torch.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_pruning_again_prunes_to_the_new_total_and_reports_what_is_kept(tmp_path):
    """A second prune_at_init at a larger sparsity keeps none of the weights the first removed
    (they score below every live one) and reaches the new target over the whole model; the table
    counts the combined mask, as torch applies it."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 12), nn.Tanh(), nn.Linear(12, 3))
    X, y = torch.randn(8, 10), torch.arange(8) % 3
    mt.prune_at_init(net, X, y, "random", 0.5, seed=1)
    t = mt.prune_at_init(net, X, y, "random", 0.75, seed=2)
    kept = [int(m.weight_mask.sum()) for _, m in mt.prunable(net)]
    assert t.kept.tolist() == kept and sum(kept) == 156 - int(0.75 * 156)
    with pytest.raises(InputError, match=".json"):
        mt.save_masks(net, tmp_path / "masks.json")


def test_batches_may_be_a_generator():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    X, y = torch.randn(8, 6), torch.arange(8) % 3
    ref = mt.critical_sparsity(net, X, y, "snip", "disconnect")
    got = mt.critical_sparsity(net, method="snip", definition="disconnect",
                               batches=((a, b) for a, b in [(X, y)]))
    assert got == ref
