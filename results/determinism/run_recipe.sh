#!/bin/bash
# run_recipe.sh NAME [ENV=VALUE ...]: 40 guarded steps of the claims recipe
# (t5_tiny, bench/pretrain_recipe.gin: 32 x (128+32) tokens, so Mesh TF's
# microbatch loop runs 2 pieces) into /tmp/det/NAME; the losses go to
# NAME.loss. STEPS and EVERY (environment) change the step count and the
# checkpoint interval; MODEL picks the model gin (t5_tiny); EXTRA adds flags.
name=$1; shift
rm -rf /tmp/det/$name
cd /work/main && env "$@" /work/main/.venv/bin/switch_mtf_transformer --model_dir=/tmp/det/$name --module_import=switch_mtf.tasks $EXTRA --gin_file=dataset.gin --gin_file=models/${MODEL:-t5_tiny}.gin --gin_file=bench/pretrain_recipe.gin --gin_file=runs/reliable.gin "--gin_param=MIXTURE_NAME = 'wiki_span_corruption'" "--gin_param=mesh_train_dataset_fn.seed = 1100" "--gin_param=utils.run.train_steps = ${STEPS:-40}" "--gin_param=utils.run.save_checkpoints_steps = ${EVERY:-40}" "--gin_param=utils.run.iterations_per_loop = 10" > /tmp/det/$name.log 2>&1
grep -o "tf_loss\[[^]]*\]" /tmp/det/$name.log > /tmp/det/$name.loss
