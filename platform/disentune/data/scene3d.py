"""The ray caster behind :mod:`disentune.data.shapes3d_procedural`: a room, a camera, four objects.

World units, z up. The room is ``|x|, |y| <= ROOM`` in its own frame, turned by ``ROOM_YAW``
about z, with the floor at ``z = 0`` (walls of unbounded height); the object stands on the floor
at the origin, axis-aligned with the world. Every function works on a flat batch of rays:
``origin`` ``(3,)`` and unit directions ``(m, 3)``. Shading is Lambert with the fixed world light
:data:`LIGHT` plus ambient; surfaces do not cast shadows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROOM = 4.5  # half-width of the square room, in the room's own frame
ROOM_YAW = math.radians(45.0)  # world = Rz(-ROOM_YAW) room: at orientation 0 a corner faces us
CAMERA_RADIUS, CAMERA_HEIGHT, TARGET_HEIGHT = 3.8, 1.4, 0.75
FIELD_OF_VIEW = math.radians(45.0)  # vertical and horizontal (square images)
LIGHT = np.array([-0.5, -0.35, 1.0]) / np.linalg.norm([-0.5, -0.35, 1.0])  # towards the light
FLOOR_SHADE = 0.9
BOUND = 0.9  # every object at scale s lies within BOUND * s of (0, 0, s / 2)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera at ``position`` looking at ``target``, no roll."""

    position: np.ndarray  # (3,)
    target: np.ndarray  # (3,)

    @classmethod
    def orbiting(cls, orientation_deg: float) -> "Camera":
        """On the circle of ``CAMERA_RADIUS`` at ``CAMERA_HEIGHT``, azimuth ``180 + orientation``
        degrees, looking at ``(0, 0, TARGET_HEIGHT)``."""
        phi = math.radians(180.0 + orientation_deg)
        position = np.array(
            [CAMERA_RADIUS * math.cos(phi), CAMERA_RADIUS * math.sin(phi), CAMERA_HEIGHT]
        )
        return cls(position, np.array([0.0, 0.0, TARGET_HEIGHT]))

    def rays(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Origin ``(3,)`` and unit directions ``(size * size, 3)`` through pixel centres.

        Row-major over a ``size x size`` image: row 0 at the top, column 0 at the left.
        """
        forward = self.target - self.position
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        half = math.tan(FIELD_OF_VIEW / 2)
        centres = ((np.arange(size) + 0.5) / size * 2.0 - 1.0) * half  # (size,)
        u = centres[None, :, None]  # columns, left to right
        v = -centres[:, None, None]  # rows, top to bottom
        d = (forward + u * right + v * up).reshape(-1, 3)
        return self.position.copy(), d / np.linalg.norm(d, axis=1, keepdims=True)


def pool(layer: np.ndarray, resolution: int, k: int) -> np.ndarray:
    """Mean over ``k x k`` supersamples: ``(C, (R k)^2)`` -> ``(C, R, R)`` float32."""
    c = layer.shape[0]
    return layer.reshape(c, resolution, k, resolution, k).mean(axis=(2, 4)).astype(np.float32)


def _lambert(normals: np.ndarray, ambient: float, light: np.ndarray = LIGHT) -> np.ndarray:
    """``ambient + (1 - ambient) * max(0, n . light)`` for unit normals ``(m, 3)``."""
    return ambient + (1.0 - ambient) * np.clip(normals @ light, 0.0, None)


def _to_room(v: np.ndarray) -> np.ndarray:
    """World vectors ``(..., 3)`` in the room's frame (a turn by ``ROOM_YAW`` about z)."""
    c, s = math.cos(ROOM_YAW), math.sin(ROOM_YAW)
    return v @ np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def background(origin: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Shaded floor and wall coverage ``(2, m)`` (F, W) of rays leaving ``origin`` inside the room.

    A ray ends where it first leaves the room's box: the floor (``z = 0``) or one of the four
    walls (``x, y = +-ROOM`` in the room's frame), whichever plane it crosses first. The room is
    turned by 45 degrees, so the camera faces a corner at orientation 0 and the floor-wall line
    bends there; the two walls either side of the corner are lit differently.
    """
    o, d = _to_room(origin), _to_room(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.array([ROOM, ROOM, 0.0])
        far = np.where(d > 0, bound, -bound)  # the plane each axis's ray component heads to
        far[:, 2] = np.where(d[:, 2] < 0, 0.0, np.inf)  # no ceiling
        t = (far - o) / d  # (m, 3): distance to the x-wall, y-wall, floor
    t = np.where(np.isfinite(t) & (t > 0), t, np.inf)
    axis = np.argmin(t, axis=1)  # 0: an x wall, 1: a y wall, 2: the floor
    normals = np.zeros_like(d)
    rows = np.arange(len(d))
    normals[rows, axis] = -np.sign(d[rows, axis])  # walls face into the room
    wall_shade = _lambert(normals, 0.7, _to_room(LIGHT))
    floor = axis == 2
    return np.stack([np.where(floor, FLOOR_SHADE, 0.0), np.where(floor, 0.0, wall_shade)])


Hit = tuple[np.ndarray, np.ndarray]  # entry distance (m,) (inf on a miss), outward normal (m, 3)


def _sphere(o: np.ndarray, d: np.ndarray, centre: np.ndarray, radius: float) -> Hit:
    """Entry distance ``(m,)`` (inf on a miss) and outward normal ``(m, 3)`` of a sphere."""
    oc = o - centre
    b = d @ oc
    disc = b * b - (oc @ oc - radius * radius)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    t = np.where((disc >= 0) & (t > 0), t, np.inf)
    with np.errstate(invalid="ignore"):
        normal = (o + t[:, None] * d - centre) / radius
    return t, normal


def _tube(o: np.ndarray, d: np.ndarray, axis: int, centre: np.ndarray, radius: float,
          half_length: float) -> Hit:
    """Entry distance and normal of the side of a cylinder along ``axis`` (0 x, 1 y, 2 z)."""
    across = [i for i in range(3) if i != axis]
    oc = (o - centre)[across]
    dc = d[:, across]  # (m, 2)
    a = (dc * dc).sum(axis=1)
    b = dc @ oc
    disc = b * b - a * (oc @ oc - radius * radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
        along = o[axis] - centre[axis] + t * d[:, axis]
    t = np.where((disc >= 0) & (a > 0) & (t > 0) & (np.abs(along) <= half_length), t, np.inf)
    normal = np.zeros_like(d)
    with np.errstate(invalid="ignore"):
        normal[:, across] = (oc + t[:, None] * dc) / radius
    return t, normal


def _box(o: np.ndarray, d: np.ndarray, centre: np.ndarray, half: float) -> Hit:
    """Entry distance and normal of an axis-aligned cube (slab method)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (centre - half - o) / d
        t2 = (centre + half - o) / d
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    t_in, t_out = near.max(axis=1), far.min(axis=1)
    t = np.where((t_in <= t_out) & (t_in > 0), t_in, np.inf)
    axis = near.argmax(axis=1)
    normal = np.zeros_like(d)
    rows = np.arange(len(d))
    normal[rows, axis] = -np.sign(d[rows, axis])
    return t, normal


def _nearest(*hits: Hit) -> Hit:
    """The nearest of several (distance, normal) hits per ray."""
    t = np.stack([h[0] for h in hits])  # (h, m)
    first = t.argmin(axis=0)
    rows = np.arange(t.shape[1])
    return t[first, rows], np.stack([h[1] for h in hits])[first, rows]


def object_hit(shape: int, scale: float, o: np.ndarray, d: np.ndarray) -> Hit:
    """Distance ``(m,)`` (inf on a miss) and normal ``(m, 3)``: cube, cylinder, sphere, capsule."""
    s = scale
    if shape == 0:
        return _box(o, d, np.array([0.0, 0.0, 0.5 * s]), 0.5 * s)
    if shape == 1:  # vertical; its top is a disc (the bottom stands on the floor)
        side = _tube(o, d, 2, np.array([0.0, 0.0, 0.5 * s]), 0.5 * s, 0.5 * s)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_top = (s - o[2]) / d[:, 2]
        p = o[:2] + t_top[:, None] * d[:, :2]
        t_top = np.where((t_top > 0) & ((p * p).sum(axis=1) <= 0.25 * s * s), t_top, np.inf)
        return _nearest(side, (t_top, np.tile([0.0, 0.0, 1.0], (len(d), 1))))
    if shape == 2:
        return _sphere(o, d, np.array([0.0, 0.0, 0.5 * s]), 0.5 * s)
    r, half = 0.35 * s, 0.4 * s  # capsule lying along y: a tube and two hemispherical ends
    return _nearest(
        _tube(o, d, 1, np.array([0.0, 0.0, r]), r, half),
        _sphere(o, d, np.array([0.0, half, r]), r),
        _sphere(o, d, np.array([0.0, -half, r]), r),
    )


def object_layer(shape: int, scale: float, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Coverage and shaded coverage ``(2, m)`` (a, S) of one object for rays ``d`` ``(m, 3)``.

    Only rays that pass within the object's bounding sphere are intersected.
    """
    centre = np.array([0.0, 0.0, 0.5 * scale])
    oc = o - centre
    b = d @ oc
    near = np.flatnonzero(b * b - (oc @ oc - (BOUND * scale) ** 2) >= 0)
    t, normal = object_hit(shape, scale, o, d[near])
    hit = np.isfinite(t)
    out = np.zeros((2, len(d)))
    out[0, near[hit]] = 1.0
    out[1, near[hit]] = _lambert(normal[hit], 0.35)
    return out
