"""Stream frames through a network layer by layer, each frame computed once.

A video network whose layers are either per-frame (spatial) or temporal with a bounded radius r
(an output frame reads inputs within r frames of it) can run on an endless stream: every
temporal layer keeps the last 2r frames of its input and emits the frames whose right context
has arrived, so the network's lag is the sum of the radii and every frame passes every layer
once. Windowing the whole network instead (StreamingWindows) recomputes 2 x the total radius
frames per window: 3x the work for the temporal decoder's 7-frame radius at 7 frames a window.
The output equals one pass over the whole video: a temporal layer sees each frame with the same
neighbours (zero padding only at the video's true ends) and the same global frame index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# (frames [t,...] whose first is global frame `first`) -> outputs [t,...], one per input frame
LayerFn = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class Layer:
    """One step of a staged network: `fn` on a run of frames, reading `radius` frames each side."""

    fn: LayerFn
    radius: int = 0  # 0: per frame


class LayerStream:
    """push(x [1,n,...]) -> outputs [1,m,...] ready so far; flush() -> the rest of the video.

    chunk: frames sent through the layers at a time (activation memory vs call overhead)."""

    def __init__(self, layers: list[Layer], chunk: int = 8, state_name: str = "stream"):
        if chunk < 1:
            raise ValueError(f"chunk={chunk}: use 1 or more frames")
        self.layers, self.chunk, self.state_name = layers, chunk, state_name
        self.buffers: list[torch.Tensor | None] = [None] * len(layers)
        self.starts = [0] * len(layers)  # global index of each layer's buffer[0]
        self.done = [0] * len(layers)  # frames each layer has emitted
        self.emitted = 0  # output frames so far
        self.skip_until = 0  # outputs before this frame are dropped (replaying a windowed state)

    @property
    def lag(self) -> int:
        """Frames an input waits for its right context before it comes out."""
        return sum(layer.radius for layer in self.layers)

    @torch.no_grad()
    def push(self, x: torch.Tensor) -> torch.Tensor:
        """Append inputs [1,n,...]; emit every frame whose right context is complete."""
        if x.shape[0] != 1:
            raise ValueError(f"a LayerStream carries one video: got a batch of {x.shape[0]} (stream each)")
        return self._run([part[0] for part in x.split(self.chunk, dim=1)], final=False)

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """Emit the frames still held back (the video ends here)."""
        return self._run([], final=True)

    def _run(self, parts: list[torch.Tensor], final: bool) -> torch.Tensor:
        outs = [self._through(part, final=False) for part in parts]
        if final:
            outs.append(self._through(None, final=True))
        outs = [o for o in outs if o is not None and o.shape[0]]
        if not outs:
            return torch.empty(0)
        out = torch.cat(outs)
        skip = max(0, self.skip_until - self.emitted)
        self.emitted += out.shape[0]
        return out[skip:][None] if skip < out.shape[0] else torch.empty(0)

    def _through(self, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        for i, layer in enumerate(self.layers):
            if layer.radius == 0:
                if x is not None and x.shape[0]:
                    x = layer.fn(x, self.done[i])
                    self.done[i] += x.shape[0]
                continue
            x = self._temporal(i, x, final)
        return x

    def _temporal(self, i: int, x: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        layer, buf = self.layers[i], self.buffers[i]
        if x is not None and x.shape[0]:
            buf = x if buf is None else torch.cat([buf, x])
        self.buffers[i] = buf
        if buf is None:
            return None
        start = self.starts[i]
        end = start + buf.shape[0]
        stop = end if final else end - layer.radius
        if stop <= self.done[i]:
            return None
        # buf starts at most `radius` frames before done[i]: the window is buf itself
        y = layer.fn(buf, start)[self.done[i] - start : stop - start]
        self.done[i] = stop
        keep_from = max(start, stop - layer.radius)
        self.buffers[i], self.starts[i] = buf[keep_from - start :], keep_from
        return y

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to resume from (see load_state)."""
        name, out = self.state_name, {}
        for i, buf in enumerate(self.buffers):
            out[f"{name}_layer{i}_buffer"] = (buf if buf is not None else torch.empty(0)).contiguous()
        out[f"{name}_layers"] = torch.tensor([self.starts, self.done])
        out[f"{name}_index"] = torch.tensor([self.emitted, self.skip_until])
        return out

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        name = self.state_name
        if f"{name}_layers" not in state:
            return self._replay_windowed(state)
        self.starts, self.done = (list(map(int, row)) for row in state[f"{name}_layers"])
        for i in range(len(self.layers)):
            buf = state[f"{name}_layer{i}_buffer"]
            self.buffers[i] = buf if buf.numel() else None
        self.emitted, self.skip_until = (int(v) for v in state[f"{name}_index"])

    def _replay_windowed(self, state: dict[str, torch.Tensor]) -> None:
        """Resume from a windowed stream's state (StreamingWindows: its buffered inputs from frame
        `start`, `emitted` frames out): those inputs reach `lag` frames back, so replaying them
        recomputes every frame from `emitted` on exactly; the ones before are dropped."""
        buf = state[f"{self.state_name}_buffer"]
        start, emitted = (int(v) for v in state[f"{self.state_name}_index"])
        self.starts = [start] * len(self.layers)
        self.done = [start] * len(self.layers)
        self.buffers = [None] * len(self.layers)
        self.emitted, self.skip_until = start, emitted
        if buf.numel():
            self.push(buf)
