"""``evtrack simulate``: turn a video or a folder of frames into an event recording."""

from __future__ import annotations

import argparse

from evtrack.cli_options import add_sensor_size_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate DVS events from a video or an image folder (ESIM/v2e style)",
        description="Convert a video (anything OpenCV reads) or a folder of images into events: per-pixel log "
        "intensity, per-pixel contrast thresholds, events interpolated in time between frames (with optical-flow "
        "sub-steps for fast motion), refractory period, background-activity noise and hot pixels. OUT's "
        "extension picks the format (.h5/.hdf5 or .aedat4). An OTB-style groundtruth_rect.txt beside the input "
        "is scaled to the sensor and written beside OUT with the frame timestamps.",
    )
    p.add_argument("input", help="video file or image folder (an OTB sequence folder with img/ works)")
    p.add_argument("out", help="output recording: .h5, .hdf5 or .aedat4")
    p.add_argument("--fps", type=float, default=None, help="frame rate (required for image folders)")
    add_sensor_size_argument(p, "sensor height and width (default 260 346, DAVIS346)", default=(260, 346))
    p.add_argument("--sensor", default=None, help=argparse.SUPPRESS)  # old spelling HEIGHTxWIDTH, still read
    p.add_argument("--threshold", type=float, default=0.25, help="nominal contrast threshold, log units")
    p.add_argument("--threshold-sigma", type=float, default=0.03, help="per-pixel threshold spread (std)")
    p.add_argument("--refractory-us", type=int, default=100, help="refractory period in microseconds")
    p.add_argument("--noise-hz", type=float, default=0.1, help="background activity per pixel per second")
    p.add_argument("--hot-pixels", type=int, default=4, help="number of hot pixels")
    p.add_argument("--no-upsample", action="store_true", help="never insert optical-flow sub-steps")
    p.add_argument("--seed", type=int, default=0, help="random seed (thresholds, noise)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from evtrack.sim.convert import UpsampleConfig, simulate_frames
    from evtrack.sim.esim import SensorConfig, parse_sensor
    from evtrack.sim.video import open_frames

    h, w = parse_sensor(args.sensor) if args.sensor else args.sensor_size
    sensor = SensorConfig(height=h, width=w, c_pos=args.threshold, c_neg=args.threshold,
                          c_sigma=args.threshold_sigma, refractory_us=args.refractory_us,
                          noise_rate_hz=args.noise_hz, n_hot_pixels=args.hot_pixels)
    source = open_frames(args.input, args.fps)
    res = simulate_frames(source, args.out, sensor, seed=args.seed,
                          upsample=UpsampleConfig(enabled=not args.no_upsample), show_progress=not args.quiet)
    dur_s = res.frame_timestamps_us[-1] * 1e-6
    print(f"{args.out}: {res.n_events:,} events from {res.n_frames} frames ({res.n_substeps} simulator steps), "
          f"{dur_s:.3f} s, {h}x{w}" + (", ground truth written beside it" if res.boxes is not None else ""))
    return 0
