export { checkEntity, type CheckEntityOptions } from "./check-entity.js"
export { propertyParameters, DEFAULT_SEED } from "./parameters.js"
export { clockAt } from "./clock.js"
