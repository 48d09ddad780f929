"""The shipped table of published figures."""
from bnnbench.models import zoo, published
from bnnbench.cli import main


def test_every_row_names_its_source():
    df = published.published()
    assert list(df.columns) == list(published.COLUMNS)
    assert df["source"].notna().all() and (df["source"].str.len() > 0).all()
    assert set(df["source"]) <= set(published.SHORT)


def test_figures_from_reference_md():
    df = published.published()

    def value(subject, metric):
        rows = df[(df["subject"] == subject) & (df["metric"] == metric)]
        assert len(rows) == 1, (subject, metric)
        return rows.iloc[0]

    assert value("cntk-basic", "test_accuracy")["value"] == 74.7
    assert value("cntk-basic", "test_accuracy")["epochs"] == 100
    assert value("cntk-vgg9", "test_accuracy")["value"] == 83.3
    assert value("bmxnet-resnet18-cifar10", "model_size_float")["value"] == 44.7
    assert value("bmxnet-resnet18-cifar10", "model_size_binary")["value"] == 1.5
    r = value("single binary convolution, daBNN vs BMXNet", "speedup")
    assert (r["value"], r["value_max"]) == (7, 23)
    nnc = df[df["subject"] == "nnc-mini-alexnet"]
    assert sorted(nnc["value"][nnc["metric"] == "test_accuracy"]) == [73.07, 74.26, 75.53]


def test_every_accuracy_row_is_a_known_model_or_listed_only_here():
    df = published.published()
    cifar = set(df[(df["dataset"] == "cifar10") & (df["metric"] == "test_accuracy")]["subject"])
    # nnc-mini-alexnet's filter counts are not published, so it has no spec.
    assert cifar - set(zoo.MODELS) == {"nnc-mini-alexnet"}


def test_cli_published(capsys):
    assert main(["models", "--published"]) == 0
    out = capsys.readouterr().out
    assert "BMXNet 2017" in out and "~13 x" in out and "7-23 x" in out
