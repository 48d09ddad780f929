"""Published figures bnnbench's measurements are read against.

Each row is one figure as its source states it, with the source named
beside it. approx=True where the source says "about" or "≈"; a range
("7x-23x") has value and value_max. Nothing here is computed or estimated:
a figure that is not in a named source does not belong in this table.
"""
from dataclasses import asdict, dataclass
from typing import Optional

BMXNET = "BMXNet (Yang, Fritzsche, Bartz, Meinel; ACM MM 2017, arXiv 1705.09864)"
DABNN = "daBNN (Zhang et al.; ACM MM 2019, arXiv 1908.05858)"
WRITEUPS = "CIFAR-10 write-ups the project was seeded with (CNTK layer semantics)"
HOST = "side-by-side measurement on the project's CI/development host"
DABNN_CHART = "daBNN README chart (JDAI-CV/dabnn, images/comparison_en.png)"
LCE_README = ("Larq Compute Engine README (larq/compute-engine, Performance tables; "
              "lce_benchmark_model, measured 2022-04-20)")
SHORT = {BMXNET: "BMXNet 2017", DABNN: "daBNN 2019", WRITEUPS: "CIFAR-10 write-ups",
         HOST: "CI host", DABNN_CHART: "daBNN README", LCE_README: "LCE README"}

BMXNET_GEMM = ("M=64 (filters), N=12800 (batch 200, 8x8 output), K=5*5*input_channels, "
               "measured inside a convolution layer")
BMXNET_HOST = "Intel 2.50 GHz x 4 cores with popcnt (SSE4.2), 8 GB RAM, Ubuntu 16.04 64-bit"
PIXEL = "Google Pixel 1, armv8 assembly kernels"
PIXEL_1T = "Google Pixel 1, single thread"
PI4 = "Raspberry Pi 4B at 1.5 GHz"
# daBNN's chart, ms per engine: Caffe float / BMXNet binary / TF Lite float / daBNN.
DABNN_CHART_MS = (
    ("3x3 conv, input 56x56x64", (72.5, 28.9, 11.7, 1.28)),
    ("3x3 conv, input 28x28x128", (70.7, 17.8, 10.3, 0.95)),
    ("3x3 conv, input 14x14x256", (69.8, 12.7, 10.8, 0.97)),
    ("3x3 conv, input 7x7x512", (69.8, 9.2, 10.7, 1.25)),
    ("Bi-Real Net 18", (1309, 396, 220, 61.3)),
)
DABNN_ENGINES = ("Caffe float", "BMXNet binary", "TF Lite float", "daBNN binary")
# LCE's Pi 4B model latencies: (model, top-1 %, ms on 1 thread, ms on 4 threads).
LCE_PI4 = (("QuickNetSmall", 59.4, 27.7, 12.1), ("QuickNet", 63.3, 45.0, 20.8),
           ("QuickNetLarge", 66.9, 77.0, 31.7))
K80 = "Tesla K80"
CI_HOST = ("2 cores of an Intel Xeon with AVX-512 (incl. AVX512_VPOPCNTDQ, AVX512_BITALG), "
           "24 GiB RAM, numpy with OpenBLAS; one thread each, in one process")
CI_SHAPE = "M=64, N=12800, K=25*512"


@dataclass(frozen=True)
class Figure:
    source: str
    subject: str
    metric: str
    value: float
    unit: str
    approx: bool = False
    value_max: Optional[float] = None
    dataset: Optional[str] = None
    epochs: Optional[int] = None
    hardware: Optional[str] = None
    conditions: Optional[str] = None


def _cifar(model, accuracy, epochs, hardware=K80, approx=False, conditions=None):
    return Figure(WRITEUPS, model, "test_accuracy", accuracy, "%", approx, None, "cifar10",
                  epochs, hardware, conditions)


def _throughput(model, samples_s):
    return Figure(WRITEUPS, model, "training_throughput", samples_s, "samples/s", True, None,
                  "cifar10", None, K80)


FIGURES = (
    # BMXNet: GEMM speed, model size.
    Figure(BMXNET, "binarize input + xnor_64_omp vs Cblas", "gemm_speedup", 13, "x", True,
           hardware=BMXNET_HOST, conditions=BMXNET_GEMM + "; input binarization included"),
    Figure(BMXNET, "bmxnet-resnet18-cifar10", "model_size_float", 44.7, "MB",
           dataset="cifar10", conditions="full-precision weights"),
    Figure(BMXNET, "bmxnet-resnet18-cifar10", "model_size_binary", 1.5, "MB",
           dataset="cifar10", conditions="binary weights packed"),
    Figure(BMXNET, "bmxnet-resnet18-cifar10", "compression", 29, "x", True,
           dataset="cifar10", conditions="44.7 MB -> 1.5 MB"),
    # daBNN on ARM.
    Figure(DABNN, "binary conv 5x5, input 14x14x256, 256 filters", "latency", 3.66, "ms",
           hardware=PIXEL),
    Figure(DABNN, "Bi-Real Net 18", "latency", 61.8, "ms", hardware=PIXEL),
    Figure(DABNN, "Bi-Real Net 18", "top1_accuracy", 56.4, "%", dataset="imagenet"),
    Figure(DABNN, "single binary convolution, daBNN vs BMXNet", "speedup", 7, "x",
           value_max=23, hardware=PIXEL),
    Figure(DABNN, "Bi-Real Net 18, daBNN vs BMXNet", "speedup", 6, "x", True, hardware=PIXEL),
    # CIFAR-10 models (test accuracy after the stated epochs).
    _cifar("cntk-basic", 74.7, 100),
    _throughput("cntk-basic", 7300),
    _cifar("cntk-basic-dropout", 74.5, 150),
    _cifar("cntk-basic-bn", 82.1, 150),
    _throughput("cntk-basic-bn", 6400),
    _cifar("cntk-vgg9", 83.3, 200),
    _throughput("cntk-vgg9", 2400),
    _cifar("cntk-resnet", 81.9, 250),
    _cifar("cntk-bnn", 85, 100, hardware="trained with CNTK (GPU), compiled with ELL",
           approx=True, conditions="about 15 % error"),
    _cifar("nnc-mini-alexnet", 73.07, 5, hardware="MacBook Air CPU"),
    _cifar("nnc-mini-alexnet", 74.26, 10, hardware="MacBook Air CPU"),
    _cifar("nnc-mini-alexnet", 75.53, 20, hardware="MacBook Air CPU"),
    Figure(WRITEUPS, "nnc-mini-alexnet", "training_time_per_epoch", 39, "min", True,
           dataset="cifar10", hardware="MacBook Air CPU"),
    # This project's host, side by side.
    Figure(HOST, "OpenBLAS sgemm", "gemm_time", 0.49, "s", True, hardware=CI_HOST,
           conditions=CI_SHAPE),
    Figure(HOST, "simple BMXNet-style xnor loop", "gemm_time", 59, "ms", True,
           hardware=CI_HOST, conditions=CI_SHAPE),
    Figure(HOST, "simple BMXNet-style xnor loop vs OpenBLAS sgemm", "gemm_speedup", 8, "x",
           True, hardware=CI_HOST, conditions=CI_SHAPE),
    Figure(HOST, "register-tiled AVX-512 popcount prototype", "gemm_time", 20, "ms", True,
           hardware=CI_HOST, conditions=CI_SHAPE),
    Figure(HOST, "register-tiled AVX-512 popcount prototype vs OpenBLAS sgemm",
           "gemm_speedup", 25, "x", True, hardware=CI_HOST, conditions=CI_SHAPE),
)

# Published layer and model latencies (the report's published table; never
# mixed with measurements).
FIGURES += tuple(
    Figure(DABNN_CHART, f"{subject}, {engine}", "latency", ms, "ms", hardware=PIXEL_1T,
           conditions="batch 1" if subject != "Bi-Real Net 18" else None)
    for subject, values in DABNN_CHART_MS for engine, ms in zip(DABNN_ENGINES, values))
FIGURES += tuple(
    Figure(LCE_README, f"{model} ({top1} % top-1)", "latency", ms, "ms", hardware=PI4,
           conditions=f"{threads} thread{'s' if threads > 1 else ''}, per image")
    for model, top1, one, four in LCE_PI4 for threads, ms in ((1, one), (4, four)))

COLUMNS = tuple(Figure.__dataclass_fields__) + ("where",)

# Where in its source a reader finds each figure: the paper and its table or
# figure, or the article's title (the write-ups are in Japanese), or the
# repository and file. None: the figure has no public source (it was measured
# while the project was built), so the report does not list it as published.
# The Japanese title is what a search finds; the gloss is for readers (and
# for pages shown without Japanese fonts).
_QIITA_CNTK = ("Qiita, \"CNTK 2.2 Python API 解説 (1) - CIFAR-10 CNN モデルの改良 / VGG, "
               "ResNet の実装\" (2017-10-29) [CNTK 2.2 Python API explained (1): improving "
               "the CIFAR-10 CNN; VGG and ResNet]")
_QIITA_BNN = ("Qiita, \"CNTK(Cognitive Tool Kit)によるBinary Convolution Neural Networkと"
              "ELL(Microsoft Embedded Learning Library)での実行\" [a binary CNN with CNTK, run "
              "with Microsoft ELL]; code: github.com/yasukit1414/binaryconv")
_CEDRO = ("cedro-blog, \"SONY Neural Network Console でミニAlexnetを作る\" [building a mini "
          "AlexNet in Sony Neural Network Console]")


def where(figure):
    """Where a reader finds `figure` in its source, or None (no public source)."""
    if figure.source == BMXNET:
        if figure.metric == "gemm_speedup":
            return "arXiv 1705.09864, Figure 1 (GEMM methods' processing time) and its text"
        return "arXiv 1705.09864, Table 1 (model size, binary and full precision)"
    if figure.source == DABNN:
        return "arXiv 1908.05858, abstract and the experiments on Google Pixel 1"
    if figure.source == WRITEUPS:
        if figure.subject == "cntk-bnn":
            return _QIITA_BNN
        if figure.subject.startswith("nnc-"):
            return _CEDRO
        return _QIITA_CNTK
    if figure.source == DABNN_CHART:
        return "github.com/JDAI-CV/dabnn, README.md: images/comparison_en.png"
    if figure.source == LCE_README:
        return "github.com/larq/compute-engine, README.md: Performance (Raspberry Pi 4B table)"
    return None


def published():
    """Every published figure as a DataFrame, one row each, source beside it,
    and where in that source it is (column `where`)."""
    import pandas as pd
    return pd.DataFrame([dict(asdict(f), where=where(f)) for f in FIGURES],
                        columns=list(COLUMNS))
