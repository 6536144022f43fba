import onnxruntime
import pytest

from facecluster.inference.runtime import DeviceError, Runtime, open_session

HAS_CUDA = "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def test_cpu_session_reports_cpu():
    _, runtime = open_session("retinaface_mnet025.onnx", "cpu")
    assert runtime.provider == "CPUExecutionProvider" and runtime.label == "CPU"


def test_auto_reports_the_provider_that_really_runs():
    session, runtime = open_session("retinaface_mnet025.onnx", "auto")
    assert runtime.provider == session.get_providers()[0]
    assert runtime.label.startswith("GPU" if runtime.provider == "CUDAExecutionProvider" else "CPU")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cuda_without_cuda_is_an_error():
    with pytest.raises(DeviceError, match="CUDA was requested"):
        open_session("retinaface_mnet025.onnx", "cuda")


def test_unknown_device_is_an_error():
    with pytest.raises(DeviceError, match="unknown device"):
        open_session("retinaface_mnet025.onnx", "tpu")


def test_fallback_reason_is_part_of_the_label():
    runtime = Runtime(requested="auto", provider="CPUExecutionProvider", fallback="CUDA failed")
    assert runtime.label == "CPU (CUDA failed)"
