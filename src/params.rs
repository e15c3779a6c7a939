//! The flat parameter layout: every float parameter of a model, one after another in the order
//! burn's module visitor meets them, each row-major. Adam's flat state on the CPU in wasm, the
//! hand-written step's parameters and gradients, and the gradient shares that the page's workers
//! exchange ([`crate::train::GradientShare`]) are all laid out so; this module is the one place
//! that reads a model into it or writes it back.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::model::Autoencoder;

/// Every parameter's values, flat. Reads synchronously: the CPU backend's tensors are in memory.
pub fn flat_params(model: &Autoencoder) -> Vec<f32> {
    struct Read(Vec<f32>);
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().try_into_vec::<f32>().expect("f32 parameters");
            self.0.extend(values);
        }
    }
    let mut read = Read(Vec::new());
    model.visit(&mut read);
    read.0
}

/// Every parameter, flattened, one tensor each on the model's device: concatenated, what
/// [`flat_params`] reads, for a device that can only be read asynchronously (WebGPU in a browser).
#[cfg(feature = "webgpu")]
pub(crate) fn param_parts(model: &Autoencoder) -> Vec<Tensor<1>> {
    struct Flatten(Vec<Tensor<1>>);
    impl ModuleVisitor for Flatten {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
    let mut flatten = Flatten(Vec::new());
    model.visit(&mut flatten);
    flatten.0
}

/// `model` with its parameters replaced by `flat`'s values, as trainable tensors on `device`;
/// every parameter keeps its id. `tracked`: whether they are marked for burn's autodiff.
pub(crate) fn write_params(model: Autoencoder, flat: &[f32], device: &Device, tracked: bool) -> Autoencoder {
    struct Write<'a> {
        flat: &'a [f32],
        device: &'a Device,
        tracked: bool,
    }
    impl ModuleMapper for Write<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.shape();
            let (values, rest) = self.flat.split_at(shape.num_elements());
            self.flat = rest;
            let updated = Tensor::<D>::from_data(TensorData::new(values.to_vec(), shape), self.device);
            let updated = if self.tracked { updated.require_grad() } else { updated };
            Param::from_mapped_value(id, updated, mapper)
        }
    }
    model.map(&mut Write { flat, device, tracked })
}

/// Every parameter's gradient in `grads`, flattened, one tensor each on `device` (zeros for a
/// parameter without one, so that the layout depends on the model alone): concatenated, the flat
/// gradient that [`unflatten_gradients`] undoes.
pub fn gradient_parts(model: &Autoencoder, mut grads: GradientsParams, device: &Device) -> Vec<Tensor<1>> {
    struct Flatten<'a> {
        grads: &'a mut GradientsParams,
        device: &'a Device,
        parts: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for Flatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let len = param.lazy_shape().num_elements();
            let grad = match self.grads.remove::<D>(param.id) {
                Some(grad) => grad.reshape([len]),
                None => Tensor::zeros([len], self.device),
            };
            self.parts.push(grad);
        }
    }
    let mut visitor = Flatten { grads: &mut grads, device, parts: Vec::new() };
    model.visit(&mut visitor);
    visitor.parts
}

/// The concatenated [`gradient_parts`] undone: `flat` cut into the model's parameters' shapes,
/// on `device`.
pub(crate) fn unflatten_gradients(model: &Autoencoder, flat: &[f32], device: &Device) -> GradientsParams {
    struct Unflatten<'a> {
        flat: &'a [f32],
        device: &'a Device,
        grads: GradientsParams,
    }
    impl ModuleVisitor for Unflatten<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.lazy_shape();
            let (values, rest) = self.flat.split_at(shape.num_elements());
            self.flat = rest;
            self.grads.register(param.id, Tensor::<D>::from_data(TensorData::new(values.to_vec(), shape), self.device));
        }
    }
    let mut visitor = Unflatten { flat, device, grads: GradientsParams::new() };
    model.visit(&mut visitor);
    visitor.grads
}

/// How many parameter tensors the layout holds (the models here have float parameters only).
pub(crate) fn tensor_count(model: &Autoencoder) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            self.0 += 1;
        }
    }
    let mut count = Count(0);
    model.visit(&mut count);
    count.0
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::model::ModelKind;

    /// A model read into the layout and written back holds what was written, and a flat gradient
    /// cut into the parameters' shapes and flattened again is the same numbers: both directions
    /// agree on the order, for both models.
    #[test]
    fn the_layout_reads_back_what_was_written() {
        let device = Device::flex();
        for (kind, tensors) in [(ModelKind::Dense, 16), (ModelKind::Conv, 12)] {
            let model = kind.init(None, &device);
            assert_eq!(tensor_count(&model), tensors, "{kind}: a weight and a bias per layer");
            let flat = flat_params(&model);
            assert_eq!(flat.len(), model.num_params());
            let shifted: Vec<f32> = flat.iter().map(|v| v + 1.0).collect();
            let written = write_params(model.clone(), &shifted, &device, false);
            assert_eq!(flat_params(&written), shifted, "{kind}: parameters");
            // Every number its own index, so a number out of place shows.
            let gradient: Vec<f32> = (0..flat.len()).map(|i| i as f32).collect();
            let parts = gradient_parts(&model, unflatten_gradients(&model, &gradient, &device), &device);
            assert_eq!(parts.len(), tensors);
            let flattened = Tensor::cat(parts, 0).into_data().try_into_vec::<f32>().unwrap();
            assert_eq!(flattened, gradient, "{kind}: gradients");
        }
    }
}
