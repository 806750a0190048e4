"""ament_python package: installable with pip (into a virtual environment) and with colcon."""

import runpy
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "pamiq_ros"
HERE = Path(__file__).parent
table = runpy.run_path(str(HERE / PACKAGE / "bringup" / "executables.py"))

console_scripts = [f"{name} = {module}:main" for name, module in table["NODE_EXECUTABLES"].items()]
console_scripts.append(f"{table['CLI_EXECUTABLE']} = {table['CLI_MODULE']}:main")

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={f"{PACKAGE}.bringup": ["fastdds_loopback.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(str(p) for p in (HERE / "launch").glob("*.launch.py"))),
        (f"share/{PACKAGE}/config", sorted(str(p) for p in (HERE / "config").glob("*.yaml"))),
    ],
    install_requires=["setuptools"],
    zip_safe=False,  # the Fast DDS profile is read from its path
    maintainer="pamiq_ros maintainers",
    maintainer_email="maintainers@pamiq.example.com",
    description="PAMIQ curiosity-driven continual learning on ROS 2.",
    license="MIT",
    python_requires=">=3.11",
    entry_points={"console_scripts": console_scripts},
)
