//! The kept rows of a query, as one JSON document (an array of rows, each an array of values).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "query_results")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub query_id: i32,
    #[sea_orm(column_type = "Text")]
    pub rows: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
