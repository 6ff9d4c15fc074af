"""switch-mtf: Switch Transformers on Mesh TensorFlow, T5 and seqio."""

import setuptools

setuptools.setup(
    name="switch-mtf",
    version="0.1.0",
    description=("A faithful reproduction of Switch Transformers (Fedus, Zoph, "
                 "Shazeer; JMLR 2022) on Mesh TensorFlow, T5 and seqio."),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache 2.0 (code); shipped data keeps its own licence, see DATA.md",
    python_requires=">=3.11,<3.12",
    # The gin folder users expect at the top level is installed inside the
    # package, so that --gin_file=models/switch_tiny.gin works from any
    # directory once switch_mtf is imported.
    packages=setuptools.find_packages(include=["switch_mtf", "switch_mtf.*"])
    + ["switch_mtf.gin"],
    package_dir={"switch_mtf.gin": "gin"},
    package_data={
        "switch_mtf.gin": ["*.gin", "**/*.gin"],
        "switch_mtf.tasks": ["data/**/*", "data/*"],
    },
    include_package_data=False,
    # Exact versions live in requirements/lock-py311.txt; these are the
    # direct dependencies with the pins that matter (see README "Install").
    install_requires=[
        "tensorflow==2.12.1",
        "tensorflow-text==2.12.1",
        "mesh-tensorflow==0.1.21",
        "t5==0.9.4",
        "seqio-nightly==0.0.15.dev20230731",
        "gin-config==0.5.0",
        "tensorflow-datasets==4.9.2",
        "setuptools==68.0.0",
        "matplotlib==3.8.4",
    ],
    extras_require={"torch": ["torch==2.1.2"], "test": ["pytest==8.3.4"]},
    entry_points={
        "console_scripts": [
            ("switch_mtf_transformer = "
             "switch_mtf.cli.launcher:console_entry_point"),
        ],
    },
)
