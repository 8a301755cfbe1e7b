"""ROS-independent perception core: decode -> preprocess -> infer -> geometry -> tracking.

No module in this package imports rclpy; every stage is a function or small class that
takes and returns numpy arrays or the dataclasses of :mod:`fluoro_perception.core.types`.
"""
