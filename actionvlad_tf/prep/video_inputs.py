"""A decoded video file → the model's inputs: T frames and T flow stacks with the release's
sampling (§3.3), flow computed on demand from the decoded frames with the data-prep flow code. What
prediction (`export.predictor`) and the visualisations (`viz`) feed a model. The frames are an array
or a `FrameBuffer` holding only some of them (streamed prediction)."""

import numpy as np

from actionvlad_tf.data import sampling
from actionvlad_tf.prep.extraction import DEFAULT_FLOW_BOUND, compute_flow_images
from actionvlad_tf.specs import FLOW_STACK

DEFAULT_FRAMES_PER_VIDEO = 25


class FrameBuffer:
    """Some frames of a video, indexed like the whole video's array: `len` is the video's frame
    count (so far), `buffer[positions]` and `buffer[a:b]` (0-based) stack the kept frames. Frames
    are kept by `add` and let go by `drop_before`; asking for a frame not kept is an error."""

    def __init__(self, num_frames=0):
        self.num_frames = num_frames
        self._frames = {}

    def add(self, position, frame):
        self._frames[position] = frame
        self.num_frames = max(self.num_frames, position + 1)

    def drop_before(self, position):
        for kept in [p for p in self._frames if p < position]:
            del self._frames[kept]

    def __len__(self):
        return self.num_frames

    def __getitem__(self, index):
        if isinstance(index, slice):
            positions = np.arange(*index.indices(self.num_frames))
        else:
            positions = np.asarray(index)
        missing = [int(p) for p in positions.ravel() if int(p) not in self._frames]
        if missing:
            raise IndexError(f"frame(s) {[p + 1 for p in missing[:5]]} (1-based) are not kept")
        frames = [self._frames[int(p)] for p in positions.ravel()]
        return np.stack(frames).reshape(*positions.shape, *frames[0].shape)


class FlowCache:
    """Flow images of a decoded video (an array or a `FrameBuffer`), computed on demand pair by pair
    and kept until `drop_before`: flow file k (1-based) is the flow from frame k to frame k + 1, as
    `extract_flow` numbers them (§3.1)."""

    def __init__(self, frames, method="tvl1", bound=DEFAULT_FLOW_BOUND):
        self.frames, self.method, self.bound = frames, method, bound
        self._pairs = {}

    def drop_before(self, number):
        """Forgets the flow files before `number` (1-based)."""
        for kept in [k for k in self._pairs if k < number]:
            del self._pairs[kept]

    def stacks(self, first_numbers, flow_stack=FLOW_STACK):
        """[T] 1-based first flow file numbers → uint8 [T, H, W, 2L], channels x1, y1, …, xL, yL."""
        numbers = sampling.stack_numbers(np.asarray(first_numbers, np.int64), flow_stack)  # [T, L]
        self._compute(sorted(set(numbers.ravel().tolist()) - set(self._pairs)))
        return np.stack([np.stack([c for k in row for c in self._pairs[k]], axis=-1) for row in numbers])

    def _compute(self, numbers):
        """Computes the missing flow files, one run of consecutive numbers at a time."""
        runs = np.split(np.asarray(numbers), np.flatnonzero(np.diff(numbers) != 1) + 1) if numbers else []
        for run in runs:
            first, last = int(run[0]), int(run[-1])
            if last >= len(self.frames):
                raise ValueError(f"flow file {last} needs frame {last + 1}, the video has {len(self.frames)}")
            flow_x, flow_y = compute_flow_images(self.frames[first - 1 : last + 1], self.method, self.bound)
            for offset, k in enumerate(range(first, last + 1)):
                self._pairs[k] = (flow_x[offset], flow_y[offset])


def sample_inputs(frames, modalities, frames_per_video, flow, start=0, num_frames=None, where="video"):
    """The model inputs of the `num_frames` frames from `start` (0-based; default: all) with the
    release's sampling (§3.3): {modality: uint8 [T, H, W, C]}. `flow` is a `FlowCache` of `frames`."""
    num_frames = len(frames) - start if num_frames is None else num_frames
    modality = "rgb+flow" if len(modalities) == 2 else modalities[0]
    first = sampling.frame_numbers(num_frames, frames_per_video, modality, FLOW_STACK, where=where) + start
    inputs = {}
    if "rgb" in modalities:
        inputs["rgb"] = frames[first - 1]
    if "flow" in modalities:
        inputs["flow"] = flow.stacks(first)
    return inputs
