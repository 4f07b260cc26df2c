"""RunDir: the names a run dir's writers and readers share."""

from pathlib import Path

from convscope.rundir import RunDir


def test_channel_wav_names_are_what_the_report_recognises():
    name = RunDir.channel_wav_name(3, 12)
    assert RunDir.CHANNEL_WAV.fullmatch(name).groups() == ("3", "12")
    assert RunDir("out").channel_wav(3, 12) == Path("out", RunDir.AUDIO, name)


def test_layer_plot_names_are_what_the_report_recognises():
    name = RunDir.layer_plot_name(12, "ConvTranspose1d")
    assert RunDir.LAYER_PLOT.fullmatch(name).groups() == ("12", "ConvTranspose1d")
    assert RunDir.LAYER_PLOT.fullmatch(RunDir.SPECTROGRAM) is None


def test_paths_sit_where_the_contract_says(tmp_path):
    run = RunDir(str(tmp_path))  # a str is accepted and kept as a Path
    assert run.path == tmp_path
    assert run.relative(run.input_wav) == "audio/input.wav"
    assert run.relative(run.layer_plot(1, "ConvTranspose1d")) == "plots/layer1_ConvTranspose1d.png"
    assert run.relative(run.hydra_overrides) == ".hydra/overrides.yaml"
    assert run.relative(run.spectrum_before) == "plots/spectrum_before.png"
