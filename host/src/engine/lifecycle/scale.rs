//! Scaling a stream down to its files, and labels arriving while it is cold.

use std::collections::BTreeMap;

use super::artifacts::{
    self, MANIFEST, MEMORY, MODEL, Manifest, MemoryRecipe, PendingRecipe, PluginRecipe, RECIPE,
    Recipe, SampleShape, WEIGHTS,
};
use super::{Cold, Labelled, Lifecycle, LifecycleError, Resident};
use crate::compute::Backend;
use crate::model::weights;

impl Lifecycle {
    /// Scale stream `id` to zero: write its files (the model and the recipe always; with
    /// preprocessing the load-ready artifacts and their manifest, last) and release
    /// everything it held. An error leaves the stream's last complete files in place (each
    /// is replaced by a rename), so its model is never lost.
    pub fn scale_down<B: Backend>(
        &self,
        be: &B,
        id: &str,
        resident: Resident<B>,
    ) -> Result<Cold, LifecycleError> {
        let dir = self.dir(id);
        std::fs::create_dir_all(&dir).map_err(|source| LifecycleError::Io {
            path: dir.clone(),
            source,
        })?;
        // The old artifacts go first, the manifest before the files it names.
        artifacts::remove_artifacts(&dir)?;
        let Resident {
            model,
            memory,
            pending,
            plugins,
        } = resident;
        weights::save(be, &model, &dir.join(MODEL))?;
        let memory_recipe = MemoryRecipe {
            capacity: memory.capacity(),
            origins: memory.origins().to_vec(),
            crc32: artifacts::crc(memory.samples()),
        };
        let mut recipe = Recipe::new(
            model.arch(),
            SampleShape::of(memory.samples()),
            memory_recipe,
        );
        recipe.pending = pending.iter().map(pending_recipe).collect();
        recipe.plugins = plugins
            .iter()
            .map(|p| PluginRecipe {
                role: p.role.clone(),
                component: p.component.clone(),
                digest: p.plugin.digest().to_string(),
                size: p.plugin.size(),
            })
            .collect();
        artifacts::write_json(&dir.join(RECIPE), &recipe)?;
        if self.preprocess {
            let mut files = BTreeMap::new();
            let flat = weights::to_flat(be, &model);
            files.insert(
                WEIGHTS.to_string(),
                artifacts::write_f32(&dir.join(WEIGHTS), &flat)?,
            );
            artifacts::write_dataset(&dir, MEMORY, memory.samples(), &mut files)?;
            for (k, p) in pending.iter().enumerate() {
                artifacts::write_dataset(
                    &dir,
                    &artifacts::pending_stem(k),
                    &p.samples,
                    &mut files,
                )?;
            }
            for p in &plugins {
                let name = artifacts::plugin_file(&p.role);
                let code = self.host.precompiled(&p.plugin)?;
                files.insert(
                    name.clone(),
                    artifacts::write_atomic(&dir.join(&name), &code)?,
                );
            }
            let mut manifest = Manifest::new(recipe);
            manifest.files = files;
            artifacts::write_json(&dir.join(MANIFEST), &manifest)?;
        }
        Ok(Cold {
            id: id.to_string(),
            dir,
            warnings: Vec::new(),
        })
    }

    /// Labelled samples that arrived for a cold stream: recorded in its recipe (the slow path
    /// draws them again from their window) and, when it has load-ready artifacts, written
    /// beside them as they are. Nothing stays in memory.
    pub fn receive(&self, cold: &mut Cold, labelled: &Labelled) -> Result<(), LifecycleError> {
        let recipe_path = cold.dir.join(RECIPE);
        let mut recipe: Recipe = match artifacts::read_json(&recipe_path) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(LifecycleError::Recipe {
                    path: recipe_path,
                    reason: "missing".into(),
                });
            }
            Err(reason) => {
                return Err(LifecycleError::Recipe {
                    path: recipe_path,
                    reason,
                });
            }
        };
        let entry = pending_recipe(labelled);
        let manifest_path = cold.dir.join(MANIFEST);
        match artifacts::read_json::<Manifest>(&manifest_path) {
            Ok(Some(mut m)) => {
                let stem = artifacts::pending_stem(m.recipe.pending.len());
                artifacts::write_dataset(&cold.dir, &stem, &labelled.samples, &mut m.files)?;
                m.recipe.pending.push(entry.clone());
                artifacts::write_json(&manifest_path, &m)?;
            }
            Ok(None) => {}
            Err(why) => {
                // Without a manifest the stream wakes by the slow path, which still has
                // everything (the recipe below records these labels too).
                cold.warnings.push(format!(
                    "{why}: unreadable while cold, the load-ready artifacts are not used"
                ));
                artifacts::remove(&manifest_path)?;
            }
        }
        recipe.pending.push(entry);
        artifacts::write_json(&recipe_path, &recipe)
    }
}

fn pending_recipe(p: &Labelled) -> PendingRecipe {
    PendingRecipe {
        window: p.window,
        len: p.samples.len(),
        crc32: artifacts::crc(&p.samples),
    }
}
