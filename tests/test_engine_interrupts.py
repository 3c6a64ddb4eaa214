"""A stop signal before training has begun ends the run with one line: SIGTERM while the trainer
is being built used to end in Paddle's C++ "FatalError: Termination signal" dump."""

import os
import signal
import subprocess
import time

import pytest
from conftest import paused_training, tiny_config


def test_sigterm_while_the_trainer_is_built_is_one_line_and_exit_143(tiny_dataset, tmp_path):
    from paddle_dx.config import dump_config

    images, lists = tiny_dataset
    dump_config(tiny_config(images, lists, tmp_path / "out" / "run"), tmp_path / "config.yaml")
    with paused_training(tmp_path / "config.yaml", "start_up", stderr=subprocess.PIPE) as proc:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    lines = [line for line in err.splitlines() if not line.startswith("[")]  # not log lines
    assert lines == ["interrupted: stopped by SIGTERM during start-up, before training began; nothing to resume"], err
    assert not (tmp_path / "out").exists()  # the folders it had created, still empty, are removed


def test_a_signal_during_start_up_of_fit_stops_before_the_first_step(tiny_dataset, tmp_path):
    """A SIGTERM while fit() claims the folder and opens its callbacks is acted on before the first
    step: nothing trained, and the line says how to start again (the claimed folder now holds this
    start's config.yaml)."""
    from paddle_dx.engine.callbacks import Callback
    from paddle_dx.engine.trainer import Interrupted, Trainer

    class SigtermAtTrainBegin(Callback):
        def on_train_begin(self, trainer):
            os.kill(os.getpid(), signal.SIGTERM)

    images, lists = tiny_dataset
    trainer = Trainer(tiny_config(images, lists, tmp_path / "run"), callbacks=[SigtermAtTrainBegin()])
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="before the first step; nothing was trained: run the same command") as caught:
        trainer.fit()
    assert caught.value.exit_code == 128 + signal.SIGTERM
    assert "-o Global.overwrite_output_dir=true" in str(caught.value)
    assert trainer.history == [] and not (tmp_path / "run" / "latest").exists()
    assert signal.getsignal(signal.SIGTERM) == handler  # fit() put the previous handler back


def test_a_second_signal_before_the_step_ends_stops_at_once(tiny_dataset, tmp_path):
    """The first signal waits for the step's end (a checkpoint); a second one, as from a user whose
    run seems stuck, stops at once and says where to go on from."""
    from paddle_dx.engine.callbacks import Callback
    from paddle_dx.engine.trainer import Interrupted, Trainer

    class TwoSigterms(Callback):
        def on_train_batch_end(self, trainer, epoch, step):
            for _ in range(2):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler runs here
            raise AssertionError("the second SIGTERM did not stop the run")

    images, lists = tiny_dataset
    trainer = Trainer(tiny_config(images, lists, tmp_path / "run"), callbacks=[TwoSigterms()])
    with pytest.raises(Interrupted, match=r"stopped by SIGTERM again before the step ended; start the run again"):
        trainer.fit()
    assert trainer.stop_signal == signal.SIGTERM and not (tmp_path / "run" / "latest").exists()
