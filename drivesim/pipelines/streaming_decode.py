"""Stream an endless video through a model with a bounded temporal reach (the temporal
decoder, the video upsampler) in bounded memory.

StreamingWindows runs the whole model on windows: every output frame needs `radius` inputs on
each side, so frames are emitted with a lag of `radius` and the buffer never holds more than
2*radius + one push of inputs. The model runs on windows of at most chunk + 2*radius inputs (the
first window of a video, which has no left context, emits chunk + radius frames), so its
activation memory does not depend on the push size either; the result equals one pass over the
whole video. The video upsampler streams this way. The temporal decoder streams layer by layer
(StreamingDecoder, models/layer_stream.py): the same frames with each frame decoded once;
WindowedDecoder keeps the windowed way as its reference.
"""

from __future__ import annotations

import torch

from drivesim.models.autoencoder import AutoencoderKL
from drivesim.models.layer_stream import Layer, LayerStream
from drivesim.models.temporal_decoder import TemporalDecoder


class StreamingWindows:
    """push(x [1,n,...]) -> outputs [1,m,...] ready so far; flush() -> the rest.

    A subclass maps a window of inputs (global frames lo..hi-1) to one output per input frame
    in `_window`; an output frame depends on inputs within `radius` frames of it."""

    state_name = "stream"

    def __init__(self, chunk: int, radius: int):
        self.chunk, self.radius = chunk, radius
        self.buffer: torch.Tensor | None = None  # inputs from global frame index `buffer_start`
        self.buffer_start = 0
        self.emitted = 0  # global index of the next frame to emit

    def _window(self, window: torch.Tensor, lo: int) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> torch.Tensor:
        """Append latents; emit every frame whose right context is complete."""
        self.buffer = z if self.buffer is None else torch.cat([self.buffer.to(z.device), z], dim=1)
        return self._emit(self._end - self.radius)

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """Emit the frames still held back (the video ends here)."""
        return self._emit(self._end)

    @property
    def _end(self) -> int:
        return self.buffer_start + (0 if self.buffer is None else self.buffer.shape[1])

    def _emit(self, stop: int) -> torch.Tensor:
        if self.buffer is None or stop <= self.emitted:
            return torch.empty(0)
        parts, a = [], self.emitted
        while a < stop:
            lo = max(self.buffer_start, a - self.radius)
            b = min(stop, lo + self.chunk + self.radius)  # at most chunk + 2 radius latents a window
            parts.append(self._decode(a, b))
            a = b
        out = torch.cat(parts, dim=1).clamp(-1, 1)
        self.emitted = stop
        keep_from = max(self.buffer_start, stop - self.radius)
        self.buffer = self.buffer[:, keep_from - self.buffer_start :]
        self.buffer_start = keep_from
        return out

    def _decode(self, start: int, stop: int) -> torch.Tensor:
        """Output frames start..stop-1 (global indices) from the buffered inputs around them."""
        lo = max(self.buffer_start, start - self.radius)
        hi = min(self._end, stop + self.radius)
        assert self.buffer is not None  # _emit decodes only while inputs are buffered
        window = self.buffer[:, lo - self.buffer_start : hi - self.buffer_start]
        return self._window(window, lo)[:, start - lo : stop - lo]

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to resume from (see load_state)."""
        buf = self.buffer if self.buffer is not None else torch.empty(0)
        return {
            f"{self.state_name}_buffer": buf.contiguous(),
            f"{self.state_name}_index": torch.tensor([self.buffer_start, self.emitted]),
        }

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        buf = state[f"{self.state_name}_buffer"]
        self.buffer = buf if buf.numel() else None
        self.buffer_start, self.emitted = (int(v) for v in state[f"{self.state_name}_index"])


class StreamingDecoder(LayerStream):
    """push(z [1,n,4,h,w]) -> frames [1,m,3,8h,8w] in [-1,1] ready so far; flush() -> the rest.

    Layer by layer (LayerStream): every latent frame passes every layer once."""

    def __init__(self, decoder: TemporalDecoder | AutoencoderKL, chunk: int = 8):
        if isinstance(decoder, TemporalDecoder):
            layers = decoder.layers()
        else:
            layers = [Layer(lambda z, first: decoder.decode(z))]
        super().__init__(layers, chunk, state_name="decoder")

    def push(self, z: torch.Tensor) -> torch.Tensor:
        return super().push(z).clamp(-1, 1)

    def flush(self) -> torch.Tensor:
        return super().flush().clamp(-1, 1)


class WindowedDecoder(StreamingWindows):
    """The reference StreamingDecoder: the whole decoder on overlapping windows of `chunk` frames
    plus its receptive radius each side (3x the work at chunk 7; `drivesim bench cascade`'s old path)."""

    state_name = "decoder"

    def __init__(self, decoder: TemporalDecoder | AutoencoderKL, chunk: int = 7):
        super().__init__(chunk, decoder.receptive_radius if isinstance(decoder, TemporalDecoder) else 0)
        self.decoder = decoder

    def _window(self, window: torch.Tensor, lo: int) -> torch.Tensor:
        if isinstance(self.decoder, TemporalDecoder):
            return self.decoder(window, frame_offset=lo)
        return torch.stack([self.decoder.decode(z) for z in window.unbind(1)], dim=1)
