"""A generated mini Cityscapes in the exact official layout and file naming (``generate``;
the command line is tools/misc/synthetic_cityscapes.py).

Each scene is a list of polygons using the real Cityscapes label set (road, sidewalk, buildings,
walls, fences, poles with traffic lights/signs, vegetation, terrain, sky, and instances of all 8
thing classes at perspective-correct sizes, occluding each other, plus crowd groups). The
polygons are the source of truth: ``*_polygons.json`` is written first, and the label PNGs are
rasterized from it by cityscapesscripts' own ``createLabelImage``/``createInstanceImage``. The
image is painted object by object with the same polygon fill (textured, shaded and noisy), so
pixels and labels agree exactly. ``gtCoarse`` holds shrunken, simplified polygons of a subset of
objects, leaving many pixels unlabeled, as the real coarse annotations do.

Output is deterministic for a seed, built in a temporary folder and moved into place when
complete. It refuses to write into a folder that it did not generate (e.g. real data).
"""
import json
import multiprocessing
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image, ImageDraw

from mmcityscapes.cityscapes import files
from mmcityscapes.common.errors import UserError

GENERATOR_VERSION = 1
MARKER = '.synthetic_cityscapes.json'
SPLITS = ('train', 'val', 'test', 'train_extra')
FINE_SPLITS = ('train', 'val', 'test')
COARSE_SPLITS = ('train', 'val', 'train_extra')
# The real cities of each split (the file names follow <city>_<seq>_<frame>).
CITIES = dict(
    train=['aachen', 'bochum', 'bremen', 'cologne', 'darmstadt', 'dusseldorf', 'erfurt',
           'hamburg', 'hanover', 'jena', 'krefeld', 'monchengladbach', 'strasbourg',
           'stuttgart', 'tubingen', 'ulm', 'weimar', 'zurich'],
    val=['frankfurt', 'lindau', 'munster'],
    test=['berlin', 'bielefeld', 'bonn', 'leverkusen', 'mainz', 'munich'],
    train_extra=['augsburg', 'bad-honnef', 'bamberg', 'bayreuth', 'dortmund', 'dresden',
                 'duisburg', 'erlangen', 'freiburg', 'heidelberg', 'heilbronn', 'karlsruhe',
                 'konigswinter', 'konstanz', 'mannheim', 'muhlheim-ruhr', 'nuremberg',
                 'oberhausen', 'saarbrucken', 'schweinfurt', 'troisdorf', 'wuppertal',
                 'wurzburg'])
CAMERA_HEIGHT_M = 1.6

# Outline templates in a unit box (x right, y down), scaled to each object's box.
TEMPLATES = dict(
    person=[(.35, 0), (.65, 0), (.68, .12), (.6, .18), (.9, .22), (1, .55), (.85, .56),
            (.8, .35), (.78, .6), (.75, 1), (.55, 1), (.5, .65), (.45, 1), (.25, 1), (.22, .6),
            (.2, .35), (.15, .56), (0, .55), (.1, .22), (.4, .18), (.32, .12)],
    rider=[(.35, 0), (.65, 0), (.68, .15), (.9, .25), (1, .6), (.85, .65), (.8, .45), (.85, .8),
           (1, 1), (.6, 1), (.5, .75), (.4, 1), (0, 1), (.15, .8), (.2, .45), (.15, .65),
           (0, .6), (.1, .25), (.32, .15)],
    car=[(0, .45), (.15, .4), (.25, .05), (.75, .05), (.85, .4), (1, .45), (1, .9), (.85, .9),
         (.85, 1), (.7, 1), (.7, .9), (.3, .9), (.3, 1), (.15, 1), (.15, .9), (0, .9)],
    truck=[(0, 0), (.7, 0), (.7, .25), (.9, .3), (1, .5), (1, .9), (.9, .9), (.9, 1), (.75, 1),
           (.75, .9), (.3, .9), (.3, 1), (.15, 1), (.15, .9), (0, .9)],
    bus=[(.02, 0), (.98, 0), (1, .05), (1, .92), (.85, .92), (.85, 1), (.7, 1), (.7, .92),
         (.3, .92), (.3, 1), (.15, 1), (.15, .92), (0, .92), (0, .05)],
    caravan=[(.05, 0), (.95, 0), (1, .1), (1, .9), (.6, .9), (.6, 1), (.45, 1), (.45, .9),
             (0, .9), (0, .1)],
    train=[(0, .25), (.04, .1), (.4, .1), (.45, 0), (.5, .1), (1, .1), (1, 1), (0, 1)],
    bicycle=[(0, .55), (.1, .4), (.3, .45), (.35, .3), (.3, .2), (.45, .2), (.5, .35), (.7, .35),
             (.75, .2), (.85, .2), (.8, .4), (1, .55), (.95, .9), (.8, 1), (.65, .9), (.55, .65),
             (.45, .65), (.35, .9), (.2, 1), (.05, .9)],
    motorcycle=[(0, .6), (.15, .4), (.35, .35), (.45, .15), (.6, .15), (.7, .35), (.85, .3),
                (1, .55), (.95, .9), (.8, 1), (.65, .9), (.6, .7), (.4, .7), (.35, .9),
                (.2, 1), (.05, .9)],
)
# (height m, min width m, max width m): the width range covers side to rear views.
SIZES_M = dict(person=(1.75, .5, .7), rider=(1.1, .5, .7), car=(1.5, 1.8, 4.4),
               truck=(3.2, 2.5, 8), bus=(3.2, 2.6, 11), caravan=(2.6, 2.3, 6),
               train=(3.8, 4, 20), bicycle=(1.05, .6, 1.75), motorcycle=(1.2, .8, 2.1))
STUFF_COLORS = dict(sky=(150, 190, 230), building=(120, 100, 90), road=(92, 90, 96),
                    sidewalk=(150, 140, 128), wall=(172, 160, 140), fence=(110, 122, 100),
                    pole=(78, 78, 82), vegetation=(62, 112, 42), terrain=(132, 150, 82),
                    static=(100, 80, 60), dynamic=(140, 60, 40), **{'ego vehicle': (30, 30, 34),
                    'traffic light': (40, 40, 40), 'traffic sign': (205, 200, 40)})


Points = Union[np.ndarray, Sequence[Sequence[float]]]  # (x, y) vertices
Color = Tuple[int, int, int]


def polygon_in_box(template: Points, x0: float, y0: float, w: float, h: float, rng: np.random.Generator,
                   jitter: float = 0.02) -> np.ndarray:
    pts = np.asarray(template, np.float64)
    pts = pts + rng.normal(0, jitter, pts.shape)
    return np.stack([x0 + pts[:, 0] * w, y0 + pts[:, 1] * h], 1)


def regular_polygon(cx: float, cy: float, rx: float, ry: float, n: int, rng: np.random.Generator,
                    jitter: float = 0.15) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
    radius = 1 + rng.uniform(-jitter, jitter, n)
    return np.stack([cx + rx * radius * np.cos(angles), cy + ry * radius * np.sin(angles)], 1)


class SceneBuilder:
    """Builds one street scene as an ordered list of objects (later ones occlude earlier)."""

    def __init__(self, rng: np.random.Generator, width: int, height: int) -> None:
        self.rng, self.w, self.h = rng, width, height
        self.objects = []
        self.horizon = height * rng.uniform(0.40, 0.50)
        self.vanish_x = width * rng.uniform(0.4, 0.6)
        self.road_far = width * rng.uniform(0.02, 0.05)  # half-width of the road at the horizon
        self.road_left = width * rng.uniform(-0.35, 0.1)  # road edges at the image bottom
        self.road_right = width * rng.uniform(0.9, 1.35)

    def add(self, label: str, polygon: Points, color: Color, texture: str = 'flat', decor: Sequence = ()) -> None:
        polygon = np.asarray(polygon, np.float64)
        polygon[:, 0] = np.clip(polygon[:, 0], 0, self.w - 1)
        polygon[:, 1] = np.clip(polygon[:, 1], 0, self.h - 1)
        self.objects.append(dict(label=label, polygon=np.round(polygon).astype(int).tolist(),
                                 color=color, texture=texture, decor=list(decor)))

    def jitter_color(self, color: Color, amount: float = 20) -> Color:
        return tuple(int(np.clip(c + self.rng.normal(0, amount), 0, 255)) for c in color)

    def px_per_m(self, ground_y: float) -> float:
        return max(ground_y - self.horizon, 1.0) / CAMERA_HEIGHT_M

    def road_edges(self, y: float) -> Tuple[float, float]:
        t = (y - self.horizon) / (self.h - self.horizon)
        left = self.vanish_x - self.road_far + t * (self.road_left - self.vanish_x + self.road_far)
        right = self.vanish_x + self.road_far + t * (self.road_right - self.vanish_x - self.road_far)
        return left, right

    def build(self) -> List[dict]:
        rng, w, h, hz = self.rng, self.w, self.h, self.horizon
        self.add('sky', [(0, 0), (w, 0), (w, hz + 2), (0, hz + 2)], STUFF_COLORS['sky'], 'gradient')
        self.add_buildings()
        # sidewalks on both sides, then the road on top of them
        base = hz + 0.02 * h
        self.add('sidewalk', [(0, base), (self.vanish_x, hz), (self.vanish_x, h), (0, h)],
                 self.jitter_color(STUFF_COLORS['sidewalk']), 'noise')
        self.add('sidewalk', [(self.vanish_x, hz), (w, base), (w, h), (self.vanish_x, h)],
                 self.jitter_color(STUFF_COLORS['sidewalk']), 'noise')
        for _ in range(rng.integers(0, 3)):
            y = rng.uniform(hz + 0.05 * h, h * 0.85)
            left, right = self.road_edges(y)
            x = rng.choice([rng.uniform(0, max(left, 1)), rng.uniform(min(right, w - 1), w)])
            size = self.px_per_m(y) * rng.uniform(1.5, 4)
            self.add('terrain', regular_polygon(x, y, size, size * 0.3, 8, rng),
                     self.jitter_color(STUFF_COLORS['terrain']), 'blobs')
        lanes = []
        for t in np.arange(rng.uniform(0.02, 0.1), 1, 0.12):
            y0, y1 = hz + t * (h - hz), hz + (t + 0.05) * (h - hz)
            lw0, lw1 = 0.1 * self.px_per_m(y0), 0.1 * self.px_per_m(y1)
            x0, x1 = (sum(self.road_edges(y0)) / 2, sum(self.road_edges(y1)) / 2)
            lanes.append(([(x0 - lw0, y0), (x0 + lw0, y0), (x1 + lw1, y1), (x1 - lw1, y1)],
                          (200, 200, 190)))
        self.add('road', [(self.vanish_x - self.road_far, hz), (self.vanish_x + self.road_far, hz),
                          (self.road_right, h), (self.road_left, h)],
                 self.jitter_color(STUFF_COLORS['road'], 10), 'noise', decor=lanes)
        self.add_roadside()
        self.add_things()
        ego = 0.06 * h
        self.add('ego vehicle', [(0, h), (0, h - ego), (0.2 * w, h - 1.3 * ego),
                                 (0.8 * w, h - 1.3 * ego), (w, h - ego), (w, h)],
                 STUFF_COLORS['ego vehicle'])
        return self.objects

    def add_buildings(self) -> None:
        rng, w, h, hz = self.rng, self.w, self.h, self.horizon
        for x_start, x_end in ((0, self.vanish_x - 0.06 * w), (self.vanish_x + 0.06 * w, w)):
            x = x_start
            while x < x_end:
                x1 = min(x + w * rng.uniform(0.08, 0.25), x_end)
                top = hz - h * rng.uniform(0.08, 0.38)
                outline = [(x, top), (x1, top), (x1, hz + 0.03 * h), (x, hz + 0.03 * h)]
                if rng.random() < 0.3:  # gabled roof
                    outline.insert(1, ((x + x1) / 2, top - 0.05 * h))
                self.add('building', outline, self.jitter_color(STUFF_COLORS['building'], 25),
                         'windows')
                x = x1
        for _ in range(rng.integers(1, 4)):  # trees in front of the buildings
            x, y = rng.uniform(0, w), hz + rng.uniform(0.01, 0.04) * h
            size = self.px_per_m(y + 0.05 * h) * rng.uniform(2, 4)
            crown = regular_polygon(x, y - size, size, size * 0.8, 12, rng)
            trunk = [(x - size * .08, y - size * .3), (x + size * .08, y - size * .3),
                     (x + size * .08, y), (x - size * .08, y)]
            color = self.jitter_color(STUFF_COLORS['vegetation'])
            self.add('vegetation', trunk, (70, 55, 40))
            self.add('vegetation', crown, color, 'blobs')

    def add_roadside(self) -> None:
        rng, w, h, hz = self.rng, self.w, self.h, self.horizon
        for label in ('wall', 'fence'):
            if rng.random() < 0.6:
                side = rng.choice([-1, 1])
                x0 = self.vanish_x + side * rng.uniform(0.08, 0.15) * w
                x1 = x0 + side * rng.uniform(0.1, 0.3) * w
                y0, y1 = hz + 0.03 * h, hz + rng.uniform(0.06, 0.12) * h
                height = rng.uniform(1, 2)
                self.add(label, [(x0, y0 - height * self.px_per_m(y0)),
                                 (x1, y1 - height * self.px_per_m(y1)), (x1, y1), (x0, y0)],
                         self.jitter_color(STUFF_COLORS[label]),
                         'stripes' if label == 'fence' else 'noise')
        for _ in range(rng.integers(1, 5)):
            y = rng.uniform(hz + 0.04 * h, h * 0.8)
            left, right = self.road_edges(y)
            x = left - rng.uniform(0.02, 0.1) * w if rng.random() < 0.5 else right + rng.uniform(0.02, 0.1) * w
            s = self.px_per_m(y)
            top = y - rng.uniform(3.5, 6) * s
            half = max(0.08 * s, 0.6)
            self.add('pole', [(x - half, top), (x + half, top), (x + half, y), (x - half, y)],
                     STUFF_COLORS['pole'])
            if rng.random() < 0.5:
                box = [(x - 0.2 * s, top), (x + 0.2 * s, top), (x + 0.2 * s, top + 0.9 * s),
                       (x - 0.2 * s, top + 0.9 * s)]
                lamps = [(regular_polygon(x, top + (0.15 + 0.3 * i) * s, 0.1 * s, 0.1 * s, 6, rng, 0),
                          color) for i, color in enumerate([(220, 40, 30), (230, 180, 30), (40, 200, 60)])]
                self.add('traffic light', box, STUFF_COLORS['traffic light'], decor=lamps)
            else:
                sign = regular_polygon(x, top + 0.3 * s, 0.35 * s, 0.35 * s, int(rng.choice([3, 4, 8])),
                                       rng, 0)
                color = STUFF_COLORS['traffic sign'] if rng.random() < 0.5 else (40, 80, 200)
                self.add('traffic sign', sign, color)
        if rng.random() < 0.5:
            y = rng.uniform(hz + 0.05 * h, h * 0.7)
            left, _ = self.road_edges(y)
            s = self.px_per_m(y)
            self.add(str(rng.choice(['static', 'dynamic'])),
                     [(left - 1.5 * s, y - s), (left - 0.3 * s, y - s), (left - 0.3 * s, y), (left - 1.5 * s, y)],
                     self.jitter_color(STUFF_COLORS['static'], 30))

    def add_things(self) -> None:
        rng, w, h, hz = self.rng, self.w, self.h, self.horizon
        things = []  # (ground y, label, x centre, on_road)
        counts = dict(car=rng.integers(3, 10), person=rng.integers(2, 9), bicycle=rng.integers(0, 4),
                      motorcycle=rng.integers(0, 3), truck=rng.integers(0, 3),
                      bus=int(rng.random() < 0.4), train=int(rng.random() < 0.15),
                      caravan=int(rng.random() < 0.1))
        for label, n in counts.items():
            for _ in range(n):
                ground = hz + (h - hz) * rng.uniform(0.03, 0.8) ** 1.5  # mostly far (small) objects
                left, right = self.road_edges(ground)
                on_road = label not in ('person', 'bicycle') or rng.random() < 0.2
                if on_road:
                    x = rng.uniform(left, right)
                else:
                    x = rng.choice([rng.uniform(left - 0.3 * w, left), rng.uniform(right, right + 0.3 * w)])
                things.append((ground, label, x))
        for group in ('persongroup', 'cargroup', 'bicyclegroup'):
            if rng.random() < 0.3:
                ground = hz + (h - hz) * rng.uniform(0.05, 0.5)
                things.append((ground, group, rng.uniform(0.1, 0.9) * w))
        for ground, label, x in sorted(things, key=lambda t: t[0]):  # far first
            self.add_thing(label, x, ground)

    def add_thing(self, label: str, x: float, ground: float) -> None:
        rng = self.rng
        s = self.px_per_m(ground)
        if label.endswith('group'):
            member = label[:-len('group')]
            height_m, _, width_m = SIZES_M[member]
            n = rng.integers(3, 6)
            width, height = width_m * s * n * 0.7, height_m * s
            bumps = np.linspace(0, 1, 2 * n + 1)
            top = [(b, 0.1 if i % 2 else 0.0) for i, b in enumerate(bumps)]
            polygon = polygon_in_box(top + [(1, 1), (0, 1)], x - width / 2, ground - height, width, height, rng, 0.01)
            self.add(label, polygon, self.jitter_color((110, 90, 90), 40), 'two_tone')
            return
        height_m, min_w, max_w = SIZES_M[label]
        width, height = rng.uniform(min_w, max_w) * s, height_m * s
        x0, y0 = x - width / 2, ground - height
        polygon = polygon_in_box(TEMPLATES[label], x0, y0, width, height, rng)
        if label in ('car', 'truck', 'bus', 'caravan', 'train'):
            paint = dict(bus=(200, 170, 30), train=(210, 210, 215), truck=(225, 225, 225)).get(
                label, tuple(int(c) for c in rng.integers(20, 235, 3)))
            windows = [(polygon_in_box([(.12, .15), (.88, .15), (.88, .4), (.12, .4)], x0, y0, width, height, rng, 0),
                        (40, 50, 60))]
            wheels = [(regular_polygon(x0 + f * width, y0 + 0.92 * height, 0.07 * width, 0.08 * height, 8, rng, 0),
                       (20, 20, 20)) for f in (0.22, 0.78)]
            self.add(label, polygon, self.jitter_color(paint, 15), 'noise', decor=windows + wheels)
        elif label in ('bicycle', 'motorcycle'):
            self.add(label, polygon, self.jitter_color((40, 40, 45), 15))
            if label == 'motorcycle' or rng.random() < 0.5:  # ridden
                rider_h = SIZES_M['rider'][0] * s
                rider = polygon_in_box(TEMPLATES['rider'], x - 0.3 * s, y0 + 0.45 * height - rider_h,
                                       0.6 * s, rider_h, rng)
                self.add('rider', rider, self.jitter_color((60, 70, 160), 60), 'two_tone')
        else:
            self.add(label, polygon, self.jitter_color((150, 60, 60), 70), 'two_tone',
                     decor=[(regular_polygon(x, y0 + 0.07 * height, 0.12 * width, 0.06 * height, 8, rng, 0),
                             (225, 180, 150))])


def texture_field(texture: str, xs: np.ndarray, ys: np.ndarray, rng: np.random.Generator, image_size: Tuple[int,
                  int]) -> np.ndarray:
    """Brightness offsets for one object's pixels (global coordinates keep patterns aligned)."""
    h, w = image_size
    cell = max(2, w // 128)
    if texture == 'windows':
        lit = ((xs // cell) % 3 != 0) & ((ys // cell) % 4 != 0)
        return np.where(lit, -45.0, 10.0)[..., None]
    if texture == 'stripes':
        return np.where((xs // cell) % 2 == 0, -35.0, 15.0)[..., None]
    if texture == 'gradient':
        return (ys / h * 60.0 - 20.0)[..., None]
    if texture == 'blobs':
        low = rng.normal(0, 30, (max(2, ys.shape[0] // cell), max(2, ys.shape[1] // cell), 1))
        return cv2.resize(low, (ys.shape[1], ys.shape[0]), interpolation=cv2.INTER_LINEAR)[..., None]
    if texture == 'noise':
        return rng.normal(0, 12, ys.shape)[..., None]
    if texture == 'two_tone':  # clothing: top and bottom differ
        rel = (ys - ys.min()) / max(ys.max() - ys.min(), 1)
        return np.where(rel > 0.55, -60.0, 20.0)[..., None]
    return np.zeros(ys.shape + (1,))


def fill_polygon(canvas: np.ndarray, polygon: Points, color_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Paint a polygon exactly as PIL (and so cityscapesscripts) rasterizes it."""
    pts = np.asarray(polygon, np.float64)
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    mask = Image.new('L', (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon([(float(x - x0), float(y - y0)) for x, y in pts], fill=1)
    mask = np.asarray(mask, bool)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    region = canvas[y0:y1, x0:x1]
    region[mask] = color_fn(xs, ys)[mask]


def render_image(objects: Sequence[dict], rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    canvas = np.zeros((height, width, 3), np.float64)
    for obj in objects:
        base = np.asarray(obj['color'], np.float64)
        fill_polygon(canvas, obj['polygon'],
                     lambda xs, ys: base + texture_field(obj['texture'], xs, ys, rng, (height, width)))
        for polygon, color in obj['decor']:
            fill_polygon(canvas, polygon, lambda xs, ys: np.broadcast_to(
                np.asarray(color, np.float64), xs.shape + (3,)))
    canvas *= rng.uniform(0.75, 1.2, 3)  # illumination / white balance
    canvas += rng.normal(0, 8, canvas.shape)  # sensor noise
    canvas = cv2.GaussianBlur(canvas, (0, 0), 0.6)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def coarsen(objects: Sequence[dict], rng: np.random.Generator) -> List[dict]:
    """Coarse annotation: a subset of objects as shrunken, simplified polygons."""
    coarse = []
    for obj in objects:
        pts = np.asarray(obj['polygon'], np.float64)
        extent = pts.max(0) - pts.min(0)
        if min(extent) < 4 or rng.random() < 0.2:
            continue
        if len(pts) > 6:
            pts = pts[::2]
        centre = pts.mean(0)
        pts = centre + (pts - centre) * rng.uniform(0.6, 0.85)
        coarse.append(dict(label=obj['label'], polygon=np.round(pts).astype(int).tolist()))
    return coarse


def write_annotation(prefix: str, objects: Sequence[dict], height: int, width: int) -> None:
    """Write <prefix>_{polygons.json,labelIds,instanceIds,color}.png from the polygons."""
    payload = dict(imgHeight=height, imgWidth=width,
                   objects=[dict(label=o['label'], polygon=o['polygon']) for o in objects])
    with open(prefix + '_polygons.json', 'w') as f:
        json.dump(payload, f)
    annotation = Annotation()
    annotation.fromJsonFile(prefix + '_polygons.json')
    createLabelImage(annotation, 'ids').save(prefix + '_labelIds.png')
    createLabelImage(annotation, 'color').save(prefix + '_color.png')
    # PIL cannot write mode-I PNGs any more: store the same ids as a 16-bit PNG.
    instances = np.asarray(createInstanceImage(annotation, 'ids'), np.int64)
    cv2.imwrite(prefix + '_instanceIds.png', instances.astype(np.uint16))


def generate_one(task: Tuple[str, str, int, dict]) -> str:
    root, split, index, args = task
    rng = np.random.default_rng([args['seed'], SPLITS.index(split), index])
    city = CITIES[split][index % len(CITIES[split])]
    name = f'{city}_{index:06d}_000019'
    objects = SceneBuilder(rng, args['width'], args['height']).build()
    image = render_image(objects, rng, args['height'], args['width'])
    img_dir = osp.join(files.split_dir(root, split), city)
    os.makedirs(img_dir, exist_ok=True)
    cv2.imwrite(osp.join(img_dir, name + files.IMAGE_SUFFIX), image[..., ::-1])
    if split in FINE_SPLITS:
        out_dir = osp.join(files.split_dir(root, split, files.FINE), city)
        os.makedirs(out_dir, exist_ok=True)
        # the public test split has no labels
        write_annotation(osp.join(out_dir, f'{name}_{files.FINE}'), [] if split == 'test' else objects,
                         args['height'], args['width'])
    if split in COARSE_SPLITS:
        out_dir = osp.join(files.split_dir(root, split, files.COARSE), city)
        os.makedirs(out_dir, exist_ok=True)
        write_annotation(osp.join(out_dir, f'{name}_{files.COARSE}'), coarsen(objects, rng),
                         args['height'], args['width'])
    return name


def generate(out: str, counts: Dict[str, int], height: int, width: int, seed: int, nproc: int = 1) -> None:
    """Generate the dataset into ``out``; a no-op if it already holds the same generation."""
    params = dict(version=GENERATOR_VERSION, counts=counts, height=height, width=width, seed=seed)
    marker = osp.join(out, MARKER)
    if osp.exists(out) and os.listdir(out):
        if not osp.isfile(marker):
            raise UserError(f'{out} exists and was not made by this generator; '
                            'refusing to write into it (real data?)')
        with open(marker) as f:
            if json.load(f) == params:
                print(f'{out}: synthetic Cityscapes already generated with these settings')
                return
    parent = osp.dirname(osp.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.tmp_synthetic_', dir=parent)
    try:
        tasks = [(tmp, split, i, dict(seed=seed, height=height, width=width))
                 for split in SPLITS for i in range(counts[split])]
        with multiprocessing.get_context('fork').Pool(max(1, nproc)) as pool:
            for done, _ in enumerate(pool.imap_unordered(generate_one, tasks, chunksize=2), 1):
                print(f'\rgenerating synthetic Cityscapes: {done}/{len(tasks)}', end='', flush=True)
        print()
        with open(osp.join(tmp, MARKER), 'w') as f:
            json.dump(params, f)
        if osp.exists(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'wrote {sum(counts.values())} images ({height}x{width}) to {out}')
