"""One TensorBoard event file written from plain values: audio, images, text, scalars, hparams.

The summaries are built from tensorboard's own protos and the file is framed by its own
RecordWriter, so neither torch (torch.utils.tensorboard imports it) nor TensorFlow is needed: a
WAV or a PNG goes into the event file byte for byte, as the run dir holds it. The file is written
under a temp name and renamed (files.atomic_path), then the event files of an earlier export of
the same folder are removed, so TensorBoard never shows a run twice or half of one.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Any, Mapping

from convscope.config.checks import require_tensorboard
from convscope.errors import ConvscopeError
from convscope.files import atomic_path

EVENT_FILE_MARK = "tfevents"  # TensorBoard reads only files whose name holds it
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> Summary.Image colorspace: grey, grey+alpha, RGB, RGBA (a palette is RGB)
PNG_COLORSPACES = {0: 1, 4: 2, 2: 3, 3: 3, 6: 4}


class EventFile:
    """The summaries of one TensorBoard run, all at step 0, written by `save`."""

    def __init__(self) -> None:
        require_tensorboard()
        # tensorboard: lazy, an optional extra (require_tensorboard said how to install it)
        from tensorboard.compat.proto import summary_pb2

        self._pb = summary_pb2
        self._values: list[Any] = []
        self._hparams: list[Any] = []

    def audio(self, tag: str, wav_bytes: bytes, sample_rate: float, channels: int,
              frames: int) -> None:
        audio = self._pb.Summary.Audio(sample_rate=sample_rate, num_channels=channels,
                                       length_frames=frames, encoded_audio_string=wav_bytes,
                                       content_type="audio/wav")
        self._values.append(self._pb.Summary.Value(tag=tag, audio=audio))

    def image(self, tag: str, png_bytes: bytes) -> None:
        width, height, colorspace = png_header(png_bytes)
        image = self._pb.Summary.Image(height=height, width=width, colorspace=colorspace,
                                       encoded_image_string=png_bytes)
        self._values.append(self._pb.Summary.Value(tag=tag, image=image))

    def text(self, tag: str, markdown: str) -> None:
        # tensorboard: lazy, as in __init__
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.types_pb2 import DT_STRING

        metadata = self._pb.SummaryMetadata(
            plugin_data=self._pb.SummaryMetadata.PluginData(plugin_name="text"))
        tensor = TensorProto(dtype=DT_STRING, string_val=[markdown.encode("utf-8")])
        self._values.append(self._pb.Summary.Value(tag=tag, metadata=metadata, tensor=tensor))

    def scalar(self, tag: str, value: float) -> None:
        self._values.append(self._pb.Summary.Value(tag=tag, simple_value=float(value)))

    def hparams(self, hparams: Mapping[str, str | float]) -> None:
        """This run as one session of the HParams dashboard: its settings against its scalars.

        No experiment summary is written: TensorBoard then builds the table from every session
        it finds (columns, which settings differ, the metrics from the sessions' scalars), where
        one experiment per session would leave it the first job's view of the sweep."""
        # tensorboard: lazy, as in __init__
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        def summary(tag: str, data: Any) -> Any:
            plugin = self._pb.SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME,
                                                         content=data.SerializeToString())
            return self._pb.Summary.Value(tag=tag, metadata=self._pb.SummaryMetadata(
                plugin_data=plugin))

        start = plugin_data_pb2.SessionStartInfo()
        for name, value in hparams.items():
            if isinstance(value, str):
                start.hparams[name].string_value = value
            else:
                start.hparams[name].number_value = float(value)
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
        version = metadata.PLUGIN_DATA_VERSION
        self._hparams = [
            summary(metadata.SESSION_START_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(version=version, session_start_info=start)),
            summary(metadata.SESSION_END_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(version=version, session_end_info=end)),
        ]

    def save(self, log_dir: Path) -> Path:
        """Write the event file into log_dir, replacing an earlier export's; its path."""
        # tensorboard: lazy, as in __init__
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        earlier = [path for path in log_dir.iterdir()
                   if EVENT_FILE_MARK in path.name and not path.name.startswith(".")]
        now = time.time()
        final = log_dir / f"events.out.{EVENT_FILE_MARK}.{int(now):010d}.convscope.{os.getpid()}"
        events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2")]
        # hparams first: the dashboard reads a session from the run's first summaries
        events += [event_pb2.Event(wall_time=now, step=0, summary=self._pb.Summary(value=[value]))
                   for value in self._hparams + self._values]
        with atomic_path(final) as tmp, open(tmp, "wb") as stream:
            writer = RecordWriter(stream)
            for event in events:
                writer.write(event.SerializeToString())
        for path in earlier:
            if path != final:
                path.unlink(missing_ok=True)
        return final


def png_header(png_bytes: bytes) -> tuple[int, int, int]:
    """(width, height, TensorBoard colorspace) from a PNG's IHDR chunk, which the format puts
    first: the image is stored as it is, so nothing needs decoding."""
    if not png_bytes.startswith(PNG_SIGNATURE) or png_bytes[12:16] != b"IHDR":
        raise ConvscopeError("not a PNG file (no PNG signature and IHDR chunk)")
    width, height = struct.unpack(">II", png_bytes[16:24])
    return width, height, PNG_COLORSPACES.get(png_bytes[25], 4)
