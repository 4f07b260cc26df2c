"""An MP3's length is what it decodes to, not libsndfile's estimate (issue 24, item 6).

Without a Xing/Info header libsndfile reports mpg123's guess (file size over the first frame's
bitrate): a VBR MP3 that starts quietly claims several times its real length, and reading it to
the end used to be refused as "truncated".
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from convscope.audio.blockio import audio_blocks, segment_span
from convscope.audio.segment import load_segment, read_header
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError

pytestmark = pytest.mark.skipif("MP3" not in soundfile.available_formats(),
                                reason="this libsndfile cannot write MP3")

LAYER3_KBPS = {3: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],  # MPEG-1
               2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]}  # MPEG-2


def first_frame_bytes(data: bytes) -> int:
    """The length of the MPEG layer III frame at the start of `data`, from its header."""
    assert data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and (data[1] >> 1) & 3 == 1, data[:4]
    version = (data[1] >> 3) & 3
    rate = [44100, 48000, 32000][(data[2] >> 2) & 3] // (1 if version == 3 else 2)
    kbps = LAYER3_KBPS[3 if version == 3 else 2][data[2] >> 4]
    return (144 if version == 3 else 72) * 1000 * kbps // rate + ((data[2] >> 1) & 1)


def decoded_length(path: Path) -> int:
    """Frames read until the decoder gives none (SoundFile.blocks stops at the estimate)."""
    total = 0
    with soundfile.SoundFile(str(path)) as sf:
        while count := len(sf.read(4096)):
            total += count
    return total


@pytest.fixture
def estimated_mp3(tmp_path):
    """A 16 kHz VBR MP3, a quiet quarter then noise, whose Xing header (the first frame) is
    cut off: libsndfile's frame count is then an estimate far from the decoded length."""
    path = tmp_path / "quiet_start.mp3"
    samples = np.zeros(41600, dtype=np.float32)
    samples[10400:] = 0.5 * np.random.default_rng(0).standard_normal(31200)
    soundfile.write(str(path), samples, 16000, format="MP3")
    data = path.read_bytes()
    assert b"Xing" in data[:64] or b"Info" in data[:64]
    path.write_bytes(data[first_frame_bytes(data):])
    assert soundfile.info(str(path)).frames > decoded_length(path)  # the case under test
    return path


def test_read_to_the_end_is_its_decoded_length(estimated_mp3):
    cfg = DataConfig(path=str(estimated_mp3), sr=16000, start=0.0, end=None)
    segment = load_segment(cfg, Path("/"))
    assert segment.samples.shape == (1, decoded_length(estimated_mp3))
    assert segment.end == pytest.approx(decoded_length(estimated_mp3) / 16000)
    assert np.abs(segment.samples).max() > 0.1  # the noise was decoded, not zeros padded in


def test_streamed_blocks_cover_the_decoded_length(estimated_mp3):
    header = read_header(estimated_mp3)
    assert header.frames == decoded_length(estimated_mp3)
    cfg = DataConfig(path=str(estimated_mp3), sr=16000, start=0.0, end=None)
    span = segment_span(estimated_mp3, cfg, header.frames / header.samplerate, header)
    blocks = list(audio_blocks(span, 5000))
    assert sum(block.shape[-1] for block in blocks) == span.length == header.frames


def test_end_past_the_decoded_length_names_it(estimated_mp3):
    real = decoded_length(estimated_mp3) / 16000
    with pytest.raises(ConvscopeError, match=rf"data.end: .* lasts {real:.3f} s"):
        load_segment(DataConfig(path=str(estimated_mp3), sr=16000, start=0.0,
                                          end=real + 0.5), Path("/"))
