pub mod deadline;
