from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nas.supernet import Supernet
from nas.supernet.static import StaticNetwork
from search_spaces import Arch, Space, get_space

from .conftest import images, randomize


def _max_diff(net: Supernet, arch: Arch) -> float:
    net.set_active(arch)
    static = net.extract(arch)
    assert isinstance(static, StaticNetwork)
    assert not static.training
    x = images(net.space, arch, batch=4, seed=11)
    with torch.no_grad():
        expected = net(x)
        assert expected.std(dim=0).max() > 1e-5  # the outputs are not constant
        return float((static(x) - expected).abs().max())


@pytest.fixture(scope="module")
def tiny_net(tiny: Space) -> Supernet:
    net = Supernet(tiny)
    randomize(net, seed=0)
    return net


def test_extract_equals_supernet_on_tiny(tiny: Space, tiny_net: Supernet) -> None:
    rng = np.random.default_rng(0)
    archs = [tiny.largest(), tiny.smallest()] + [tiny.sample(rng) for _ in range(50)]
    for arch in archs:
        assert _max_diff(tiny_net, arch) <= 1e-5, arch
        static = tiny_net.extract(arch)
        assert sum(p.numel() for p in static.parameters()) == tiny.params(arch)


def test_extract_equals_supernet_on_mbv3_small(small: Space) -> None:
    net = Supernet(small)
    randomize(net, seed=1, archs=3, batch=2)
    rng = np.random.default_rng(1)
    for arch in [small.sample(rng) for _ in range(5)]:
        assert _max_diff(net, arch) <= 1e-5, arch
        static = net.extract(arch)
        assert sum(p.numel() for p in static.parameters()) == small.params(arch)


def test_extract_equals_supernet_on_mbv3_imagenet() -> None:
    space = get_space("mbv3-imagenet")
    net = Supernet(space)
    arch = dataclasses.replace(space.sample(np.random.default_rng(2)), resolution=128)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    net.set_active(arch)
    net.train()
    with torch.no_grad():
        net(images(space, arch, batch=2))
    net.eval()
    assert _max_diff(net, arch) <= 1e-5
    assert sum(p.numel() for p in net.extract(arch).parameters()) == space.params(arch)


def test_extract_leaves_supernet_unchanged(tiny: Space, tiny_net: Supernet) -> None:
    tiny_net.set_max()
    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    tiny_net.extract(tiny.smallest())
    tiny_net.extract(tiny.sample(np.random.default_rng(9)))
    assert tiny_net.active_arch == tiny.largest()
    after = tiny_net.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key


def test_extracted_network_exports_to_onnx(tiny: Space, tiny_net: Supernet) -> None:
    arch = tiny.sample(np.random.default_rng(4))
    static = tiny_net.extract(arch)
    x = images(tiny, arch, batch=2, seed=5)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(static, (x,), buffer, dynamo=False, input_names=["x"], output_names=["y"])
    model = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model)
    ops = {(node.domain, node.op_type) for node in model.graph.node}
    assert all(domain in ("", "ai.onnx") for domain, _ in ops), ops
    op_types = {op for _, op in ops}
    assert {"Conv", "Gemm"} <= op_types
    plain = {
        "Add", "Constant", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "HardSigmoid",
        "HardSwish", "Identity", "Mul", "ReduceMean", "Relu", "BatchNormalization", "Reshape",
    }  # fmt: skip
    assert op_types <= plain, op_types - plain
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = static(x).numpy()
    np.testing.assert_allclose(result, expected, atol=1e-4, rtol=0)
