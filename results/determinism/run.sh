#!/bin/bash
# run.sh NAME MODEL_GIN EXTRA...
name=$1; model=$2; shift 2
rm -rf /tmp/det/$name
/work/main/.venv/bin/switch_mtf_transformer --model_dir=/tmp/det/$name --module_import=switch_mtf.tasks --gin_file=dataset.gin --gin_file=$model --gin_file=runs/demo_pretrain.gin --gin_file=runs/reliable.gin --gin_param="MIXTURE_NAME='wiki_span_corruption'" --gin_param=utils.run.train_steps=8 --gin_param=utils.run.save_checkpoints_steps=200 "$@" > /tmp/det/$name.log 2>&1
grep -o "tf_loss\[[^]]*\]" /tmp/det/$name.log > /tmp/det/$name.loss
