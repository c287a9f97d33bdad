//! Activation addition (ActAdd, Turner et al. 2023): one contrastive pair such as "Love" / "Hate", run
//! position by position. The vector is resid(positive) − resid(negative) at every position [k, d_model] (the
//! shorter prompt padded with space tokens, as the paper pads), added to the first k positions of a prompt.

use crate::device::read;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::hooks::{HookPoint, Hooks};
use crate::model::transformer::Input;
use crate::model::weights::HostTensor;

/// The position-aligned difference [k, d_model] at the hook named `hook`; `prepend_bos` puts the BOS token
/// first in both prompts, as TransformerLens does by default (the steered prompt must then start with it too).
pub async fn actadd_vector(
    model: &Model,
    positive: &str,
    negative: &str,
    hook: &str,
    prepend_bos: bool,
) -> Result<HostTensor> {
    let point = HookPoint::parse(hook, model.cfg().n_layers)?;
    let mut pos = model.encode(positive, prepend_bos)?;
    let mut neg = model.encode(negative, prepend_bos)?;
    if positive.is_empty() || negative.is_empty() {
        return Err(Error::invalid("ActAdd needs a non-empty positive and negative prompt"));
    }
    let space = match model.tokenizer.encode(" ")?[..] {
        [id] => id,
        _ => return Err(Error::invalid("this tokenizer has no single space token to pad ActAdd prompts with")),
    };
    let k = pos.len().max(neg.len());
    pos.resize(k, space);
    neg.resize(k, space);
    let ids = [pos, neg].concat(); // [2, k]: both prompts in one pass
    let both = read(model.run_to(Input::Tokens { ids: &ids, rows: 2 }, &mut Hooks::default(), point)?).await?;
    let (p, n) = both.data.split_at(both.data.len() / 2); // [k, d] each
    let diff = p.iter().zip(n).map(|(a, b)| a - b).collect();
    Ok(HostTensor::new(vec![k, model.cfg().d_model], diff))
}
